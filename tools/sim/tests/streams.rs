//! Websocket streams as a client sees them: combined and raw framing, stream names, contiguous
//! depth ids, timeUnit, over plain TCP and over TLS trusting the simulator's CA.

mod util;

use std::time::Duration;

use serde_json::Value;
use tickfeed_sim::{FaultPlan, MarketSource, Pacing, Sim, SimConfig};
use util::{next_text, ws};

fn config(tls: bool, symbols: &[&str]) -> SimConfig {
    SimConfig {
        tls,
        source: MarketSource::Synthetic { symbols: symbols.iter().map(|s| s.to_string()).collect(), seed: 42 },
        pacing: Pacing::Rate(5_000),
        levels_per_side: 500,
        faults: FaultPlan::default(),
        ..SimConfig::default()
    }
}

/// Reads `n` combined messages and checks their shape; returns them parsed.
fn read_combined(w: &mut tungstenite::WebSocket<util::Stream>, n: usize) -> Vec<(String, Value, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let text = next_text(w, Duration::from_secs(10));
        assert!(text.starts_with("{\"stream\":\""), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 2, "only stream and data: {text}");
        let name = v["stream"].as_str().unwrap().to_string();
        // Exact wrapper: no spaces, stream first, data second.
        let data_text = text[format!("{{\"stream\":\"{name}\",\"data\":").len()..text.len() - 1].to_string();
        serde_json::from_str::<Value>(&data_text).expect("data is the raw payload");
        out.push((name, v["data"].clone(), data_text));
    }
    out
}

fn check_streams(tls: bool) {
    let sim = Sim::start(config(tls, &["btcusdt", "ethusdt"])).unwrap();
    assert_eq!(sim.ws_base().starts_with("wss://"), tls);
    let mut w = ws(
        &sim,
        "/stream?streams=btcusdt@depth@100ms/btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker/ethusdt@depth@100ms",
    );
    let msgs = read_combined(&mut w, 600);
    let mut prev_u: std::collections::HashMap<String, u64> = Default::default();
    let mut seen = std::collections::HashSet::new();
    for (name, data, raw) in &msgs {
        seen.insert(name.clone());
        match name.as_str() {
            "btcusdt@depth@100ms" | "ethusdt@depth@100ms" => {
                assert!(raw.starts_with("{\"e\":\"depthUpdate\",\"E\":"), "{raw}");
                let sym = if name.starts_with("btc") { "BTCUSDT" } else { "ETHUSDT" };
                assert_eq!(data["s"], sym);
                let (u0, u1) = (data["U"].as_u64().unwrap(), data["u"].as_u64().unwrap());
                assert!(u0 <= u1);
                if let Some(p) = prev_u.get(name) {
                    assert_eq!(u0, p + 1, "contiguous U/u on {name}");
                }
                prev_u.insert(name.clone(), u1);
                let e = data["E"].as_i64().unwrap();
                assert!((1_600_000_000_000..4_000_000_000_000).contains(&e), "E in ms: {e}");
                assert!(
                    data["b"].as_array().unwrap().len() + data["a"].as_array().unwrap().len() >= 10,
                    "dozens of levels"
                );
            }
            "btcusdt@trade" => {
                assert!(raw.starts_with("{\"e\":\"trade\",\"E\":"), "{raw}");
                assert!(data["t"].as_u64().unwrap() > u32::MAX as u64 / 2);
                assert!(data["T"].as_i64().unwrap() <= data["E"].as_i64().unwrap());
                assert!(data["p"].as_str().unwrap().ends_with(|c: char| c.is_ascii_digit()));
                assert_eq!(data["p"].as_str().unwrap().split('.').nth(1).unwrap().len(), 8);
            }
            "btcusdt@aggTrade" => {
                assert!(raw.starts_with("{\"e\":\"aggTrade\",\"E\":"), "{raw}");
                assert!(data["f"].as_u64().unwrap() <= data["l"].as_u64().unwrap());
            }
            "btcusdt@bookTicker" => {
                assert!(raw.starts_with("{\"u\":"), "{raw}");
                assert!(data.get("E").is_none());
                let b: f64 = data["b"].as_str().unwrap().parse().unwrap();
                let a: f64 = data["a"].as_str().unwrap().parse().unwrap();
                assert!(b < a);
            }
            other => panic!("unexpected stream {other}"),
        }
    }
    assert_eq!(seen.len(), 5, "every subscribed stream delivered: {seen:?}");
}

#[test]
fn combined_streams_are_binance_shaped_plain() {
    check_streams(false);
}

#[test]
fn combined_streams_are_binance_shaped_over_tls() {
    check_streams(true);
}

#[test]
fn raw_stream_is_unwrapped_and_microseconds_when_asked() {
    let sim = Sim::start(config(false, &["btcusdt"])).unwrap();
    let mut w = ws(&sim, "/ws/btcusdt@depth@100ms?timeUnit=MICROSECOND");
    for _ in 0..5 {
        let text = next_text(&mut w, Duration::from_secs(10));
        assert!(text.starts_with("{\"e\":\"depthUpdate\",\"E\":"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let e = v["E"].as_i64().unwrap();
        assert!(e > 1_600_000_000_000_000, "E in microseconds: {e}");
    }
    let mut w = ws(&sim, "/stream?streams=btcusdt@trade&timeUnit=microsecond");
    let text = next_text(&mut w, Duration::from_secs(10));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["data"]["E"].as_i64().unwrap() > 1_600_000_000_000_000);
    assert!(v["data"]["T"].as_i64().unwrap() > 1_600_000_000_000_000);
}

#[test]
fn one_second_depth_covers_ten_fast_diffs() {
    let sim = Sim::start(config(false, &["btcusdt"])).unwrap();
    let mut w = ws(&sim, "/stream?streams=btcusdt@depth/btcusdt@depth@100ms");
    let mut fast: Vec<(u64, u64)> = Vec::new();
    let mut slow = 0;
    while slow < 3 {
        let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(10))).unwrap();
        let (u0, u1) = (v["data"]["U"].as_u64().unwrap(), v["data"]["u"].as_u64().unwrap());
        if v["stream"] == "btcusdt@depth" {
            if fast.len() >= 10 {
                // The slow diff spans exactly the last ten fast ones.
                let last10 = &fast[fast.len() - 10..];
                assert_eq!((u0, u1), (last10[0].0, last10[9].1));
                slow += 1;
            }
        } else {
            fast.push((u0, u1));
        }
    }
}

fn paced(pacing: Pacing) -> tickfeed_sim::SimHandle {
    Sim::start(SimConfig { pacing, ..config(false, &["btcusdt"]) }).unwrap()
}

/// Counts messages on `path` during `window` (after the first one arrives).
fn count_for(sim: &tickfeed_sim::SimHandle, path: &str, window: Duration) -> usize {
    let mut w = ws(sim, path);
    next_text(&mut w, Duration::from_secs(10));
    let t = std::time::Instant::now();
    let mut n = 0;
    while t.elapsed() < window {
        next_text(&mut w, Duration::from_secs(10));
        n += 1;
    }
    n
}

#[test]
fn real_time_speed_and_rate_pacing() {
    // Bounds are wide: the box is shared and debug builds are slow; what matters is the order of
    // magnitude each mode produces.
    let rt = count_for(&paced(Pacing::RealTime), "/ws/btcusdt@depth@100ms", Duration::from_millis(1000));
    assert!((6..=14).contains(&rt), "real time: a diff every 100 ms, got {rt}/s");
    let x10 = count_for(&paced(Pacing::Speed(10.0)), "/ws/btcusdt@depth@100ms", Duration::from_millis(500));
    assert!((25..=75).contains(&x10), "x10: a diff every 10 ms, got {x10} in 0.5 s");
    let all = "/stream?streams=btcusdt@depth/btcusdt@depth@100ms/btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker";
    let rate = count_for(&paced(Pacing::Rate(2_000)), all, Duration::from_millis(500));
    assert!((600..=1400).contains(&rate), "2000 msg/s, got {rate} in 0.5 s");
}

#[test]
fn as_fast_as_read_waits_for_readers() {
    let sim = Sim::start(SimConfig { pacing: Pacing::AsFastAsRead, log_capacity: 256, ..config(false, &["btcusdt"]) })
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(sim.counters().events_published, 0, "no reader, no market");
    let mut w = ws(&sim, "/ws/btcusdt@depth@100ms/btcusdt@depth/btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker");
    let mut prev = None;
    let mut diffs = 0;
    while diffs < 100 {
        let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(10))).unwrap();
        if v["e"] != "depthUpdate" {
            continue;
        }
        let (u0, u1) = (v["U"].as_u64().unwrap(), v["u"].as_u64().unwrap());
        if prev.is_some_and(|p: u64| u1 <= p) {
            continue; // the 1000 ms diff, covering the last ten
        }
        diffs += 1;
        if let Some(p) = prev {
            assert_eq!(u0, p + 1, "lossless: nothing evicted under a reader");
        }
        prev = Some(u1);
    }
    // Stop reading: socket buffers (megabytes on loopback) fill, the connection blocks, the
    // market stalls.
    std::thread::sleep(Duration::from_millis(1500));
    let a = sim.counters().events_published;
    std::thread::sleep(Duration::from_millis(300));
    let b = sim.counters().events_published;
    assert_eq!(a, b, "back-pressure stops the market");
    assert_eq!(sim.counters().disconnects_slow_consumer, 0);
}

#[test]
fn a_client_that_stops_reading_is_dropped_as_slow() {
    let sim = Sim::start(SimConfig {
        pacing: Pacing::Rate(50_000),
        log_capacity: 256,
        write_timeout: Duration::from_millis(300),
        ..config(false, &["btcusdt"])
    })
    .unwrap();
    let _w = ws(&sim, "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade/btcusdt@aggTrade");
    assert!(util::wait_for(Duration::from_secs(10), || sim.counters().disconnects_slow_consumer == 1));
}

#[test]
fn a_drop_behind_the_log_is_blamed_on_the_client_that_stopped_reading() {
    // The write timeout is long, so the drop is the log's: the connection blocks on the full
    // socket while 8192 events (160 ms) are retained, and finds itself behind them once the
    // client reads again.
    let sim = Sim::start(SimConfig {
        pacing: Pacing::Rate(50_000),
        log_capacity: 8192,
        write_timeout: Duration::from_secs(30),
        ..config(false, &["btcusdt"])
    })
    .unwrap();
    let mut w = ws(&sim, "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade/btcusdt@aggTrade");
    for _ in 0..500 {
        next_text(&mut w, Duration::from_secs(10));
    }
    let c = sim.counters();
    assert!(c.ws_backlog_max >= 1 && c.ws_backlog_max <= 8192, "{c:?}");
    // Stop reading long enough to fill the socket buffers (megabytes) and block the connection
    // well past the log, then read again: the server's close comes after what it had written.
    std::thread::sleep(Duration::from_secs(3));
    let reason = loop {
        match w.read() {
            Ok(tungstenite::Message::Close(f)) => break f.map(|f| (u16::from(f.code), f.reason.to_string())),
            Ok(_) => continue,
            Err(e) => panic!("expected a close frame, got {e}"),
        }
    };
    assert_eq!(reason, Some((1008, "Slow consumer".to_string())));
    assert!(util::wait_for(Duration::from_secs(2), || sim.counters().disconnects_slow_consumer == 1));
    let c = sim.counters();
    assert_eq!(c.slow_consumer_sim_behind, 0, "the client stopped reading, not the simulator: {c:?}");
}
