//! Faults as a client observes them, each injected at runtime into a live connection (and a few
//! through the start-up plan, as the CLI sets them): gaps the official procedure must resync from,
//! Binance's ping/pong rule, fragmentation, close 1001, TCP reset, serverShutdown, the connection
//! age limit, malformed / unknown-stream / binary messages, live control messages, a lag on some
//! connections, a paused market, frames injected as given (protocol violations included) and a
//! close that comes some time after serverShutdown.

mod util;

use std::io::{self, Read};
use std::time::{Duration, Instant};

use serde_json::Value;
use tickfeed_sim::{FaultPlan, Inject, Pacing, Sim, SimConfig, SimHandle};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;
use util::{next_text, parse_diff, wait_for, ws, LocalBook, RawWs};

fn sim_with(faults: FaultPlan, rate: u32) -> SimHandle {
    Sim::start(SimConfig {
        tls: false,
        pacing: Pacing::Rate(rate),
        levels_per_side: 600,
        faults,
        ..SimConfig::default()
    })
    .unwrap()
}

fn no_ping() -> FaultPlan {
    FaultPlan { ping_interval: None, ..FaultPlan::default() }
}

#[test]
fn injected_gap_is_real_and_the_client_resyncs_to_the_reference() {
    let sim = sim_with(no_ping(), 20_000);
    let mut w = ws(&sim, "/stream?streams=btcusdt@depth@100ms");
    let mut book = LocalBook::default();
    let mut prev_u: Option<u64> = None;
    let mut gaps_seen = 0;
    let mut injected = 0;
    let mut next_at = 50;
    while book.applied < 400 {
        let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(10))).unwrap();
        let d = parse_diff(&v["data"]);
        if let Some(p) = prev_u {
            if d.first > p + 1 {
                gaps_seen += 1;
            } else {
                assert_eq!(d.first, p + 1);
            }
        }
        prev_u = Some(d.last);
        book.on_diff(&sim, "BTCUSDT", d);
        if book.synced && book.applied >= next_at && injected < 2 {
            sim.faults().drop_next_diff();
            injected += 1;
            next_at += 150;
        }
    }
    assert_eq!(gaps_seen, 2, "each injection is one U > prev u + 1 on the wire");
    assert_eq!(book.gaps, 2, "the client detected both");
    assert!(book.snapshots >= 3, "and resynced after each");
    assert_eq!(sim.counters().gaps_injected, 2);
    assert_eq!(book.to_book("BTCUSDT"), sim.reference_book("BTCUSDT", book.id).unwrap());
}

#[test]
fn periodic_drops_from_the_plan_still_converge() {
    let sim = sim_with(FaultPlan { drop_diff_every: Some(40), ..no_ping() }, 20_000);
    let mut w = ws(&sim, "/stream?streams=btcusdt@depth@100ms");
    let mut book = LocalBook::default();
    while book.applied < 150 || !book.synced {
        let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(10))).unwrap();
        book.on_diff(&sim, "BTCUSDT", parse_diff(&v["data"]));
    }
    assert!(book.gaps >= 2, "gaps: {}", book.gaps);
    assert_eq!(book.to_book("BTCUSDT"), sim.reference_book("BTCUSDT", book.id).unwrap());
}

/// Pings every 100 ms, with the 5-messages-a-second law off: these tests are about answering
/// pings, and at that pace the answers alone would break it (`tests/laws.rs` tests the law).
fn ping_sim() -> SimHandle {
    let sim = sim_with(no_ping(), 1_000);
    sim.faults().set_ping(Some(Duration::from_millis(100)), Duration::from_millis(400));
    sim.faults().set_max_incoming_per_sec(None);
    sim
}

/// Reads frames until the connection ends; returns (pings seen, close code if any).
fn read_until_closed(raw: &mut RawWs, within: Duration) -> (u32, Option<u16>) {
    let deadline = Instant::now() + within;
    let mut pings = 0;
    loop {
        assert!(Instant::now() < deadline, "still connected after {within:?}");
        match raw.read_frame() {
            Ok(f) if f.opcode == 0x9 => pings += 1,
            Ok(f) if f.opcode == 0x8 => return (pings, Some(u16::from_be_bytes([f.payload[0], f.payload[1]]))),
            Ok(_) => {}
            Err(_) => return (pings, None),
        }
    }
}

#[test]
fn ping_without_pong_disconnects_within_the_limit() {
    let sim = ping_sim();
    let mut raw = RawWs::open(&sim, "/ws");
    let t = Instant::now();
    let (pings, code) = read_until_closed(&mut raw, Duration::from_secs(5));
    let took = t.elapsed();
    assert!(pings >= 1);
    assert_eq!(code, Some(1008));
    assert!(took >= Duration::from_millis(450) && took < Duration::from_millis(2000), "{took:?}");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_pong_timeout == 1));
}

#[test]
fn pong_with_the_wrong_payload_disconnects() {
    let sim = ping_sim();
    let mut raw = RawWs::open(&sim, "/ws");
    loop {
        let f = raw.read_frame().unwrap();
        if f.opcode == 0x9 {
            assert_eq!(f.payload.len(), 8, "random payload");
            raw.send(0xA, b"not-the-payload").unwrap();
            break;
        }
    }
    let (_, code) = read_until_closed(&mut raw, Duration::from_secs(2));
    assert_eq!(code, Some(1008));
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_pong_mismatch == 1));
}

#[test]
fn correct_pongs_keep_the_connection() {
    let sim = ping_sim();
    let mut raw = RawWs::open(&sim, "/ws");
    let start = Instant::now();
    let mut payloads = std::collections::HashSet::new();
    // An unsolicited empty pong first: allowed, and it must not count as an answer.
    raw.send(0xA, b"").unwrap();
    while start.elapsed() < Duration::from_millis(1200) {
        let f = raw.read_frame().unwrap();
        assert_ne!(f.opcode, 0x8, "closed although every ping was answered");
        if f.opcode == 0x9 {
            payloads.insert(f.payload.clone());
            raw.send(0xA, &f.payload).unwrap();
        }
    }
    let c = sim.counters();
    assert!(c.pings_sent >= 6 && c.pongs_matched >= 6, "{c:?}");
    assert!(payloads.len() >= 6, "payloads differ per ping");
    assert_eq!(c.disconnects_pong_timeout + c.disconnects_pong_mismatch, 0);
    assert!(c.pongs_unsolicited >= 1);
    // tungstenite answers pings itself while reading: it must stay connected too.
    let mut w = ws(&sim, "/stream?streams=btcusdt@trade");
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(800) {
        next_text(&mut w, Duration::from_secs(5));
    }
    assert_eq!(sim.counters().disconnects_pong_timeout, 0);
}

#[test]
fn fragmented_messages_arrive_as_several_frames() {
    let sim = sim_with(no_ping(), 2_000);
    let mut raw = RawWs::open(&sim, "/stream?streams=btcusdt@depth@100ms");
    raw.read_frame().unwrap();
    sim.faults().set_fragment(Some(3));
    // Skip whole messages already queued, then expect Text(fin=0), Continue(fin=0), Continue(fin=1).
    let mut f = raw.read_frame().unwrap();
    while f.fin {
        f = raw.read_frame().unwrap();
    }
    assert_eq!((f.opcode, f.fin), (0x1, false));
    let mut text = f.payload;
    let f2 = raw.read_frame().unwrap();
    assert_eq!((f2.opcode, f2.fin), (0x0, false));
    let f3 = raw.read_frame().unwrap();
    assert_eq!((f3.opcode, f3.fin), (0x0, true));
    text.extend(f2.payload);
    text.extend(f3.payload);
    let v: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(v["stream"], "btcusdt@depth@100ms");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().fragmented_messages >= 1));
    // A normal client reassembles them.
    let mut w = ws(&sim, "/stream?streams=btcusdt@depth@100ms");
    let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(5))).unwrap();
    assert_eq!(v["data"]["e"], "depthUpdate");
}

#[test]
fn close_1001_reaches_the_client() {
    let sim = sim_with(no_ping(), 2_000);
    let mut w = ws(&sim, "/stream?streams=btcusdt@trade");
    next_text(&mut w, Duration::from_secs(5));
    sim.faults().close_connections();
    let code = loop {
        match w.read() {
            Ok(Message::Close(f)) => break f.map(|f| f.code),
            Ok(_) => continue,
            Err(e) => panic!("expected a close frame, got {e}"),
        }
    };
    assert_eq!(code, Some(CloseCode::Away));
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_close_1001 == 1));
}

#[test]
fn abort_is_a_tcp_reset() {
    let sim = sim_with(no_ping(), 2_000);
    let mut raw = RawWs::open(&sim, "/ws");
    std::thread::sleep(Duration::from_millis(50));
    sim.faults().abort_connections();
    let err = loop {
        match raw.read_frame() {
            Ok(f) => assert_ne!(f.opcode, 0x8, "a reset sends no close frame"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_abort == 1));
}

#[test]
fn server_shutdown_event_then_close() {
    let sim = sim_with(no_ping(), 2_000);
    let mut combined = ws(&sim, "/stream?streams=btcusdt@trade");
    let mut raw = ws(&sim, "/ws/btcusdt@trade?timeUnit=MICROSECOND");
    next_text(&mut combined, Duration::from_secs(5));
    next_text(&mut raw, Duration::from_secs(5));
    sim.faults().server_shutdown();
    for (w, wrapped) in [(&mut combined, true), (&mut raw, false)] {
        let mut got_event = false;
        loop {
            match w.read().unwrap() {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    let data = if wrapped { &v["data"] } else { &v };
                    if data["e"] == "serverShutdown" {
                        if wrapped {
                            assert_eq!(v["stream"], "!serverShutdown");
                            assert!(t.as_str().starts_with(
                                "{\"stream\":\"!serverShutdown\",\"data\":{\"e\":\"serverShutdown\",\"E\":"
                            ));
                            assert!(data["E"].as_i64().unwrap() < 10_000_000_000_000, "ms");
                        } else {
                            assert!(t.as_str().starts_with("{\"e\":\"serverShutdown\",\"E\":"));
                            assert!(data["E"].as_i64().unwrap() > 1_000_000_000_000_000, "µs when asked");
                        }
                        got_event = true;
                    }
                }
                Message::Close(f) => {
                    assert!(got_event, "event before close");
                    assert_eq!(f.unwrap().code, CloseCode::Away);
                    break;
                }
                _ => {}
            }
        }
    }
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_server_shutdown == 2));
}

#[test]
fn forced_disconnect_after_max_age() {
    let sim = sim_with(no_ping(), 2_000);
    sim.faults().set_max_connection_age(Some(Duration::from_millis(300)));
    let t = Instant::now();
    let mut w = ws(&sim, "/stream?streams=btcusdt@trade");
    let closed = loop {
        match w.read() {
            Ok(Message::Close(f)) => break f.is_some(),
            Ok(_) => assert!(t.elapsed() < Duration::from_secs(3), "not disconnected"),
            Err(_) => break false,
        }
    };
    assert!(closed);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_max_age == 1));
}

#[test]
fn malformed_unknown_stream_and_binary_messages() {
    let sim = sim_with(no_ping(), 2_000);
    let mut w = ws(&sim, "/stream?streams=btcusdt@trade");
    next_text(&mut w, Duration::from_secs(5));
    let f = sim.faults();
    f.send_malformed();
    f.send_unknown_stream();
    f.send_binary();
    let (mut malformed, mut unknown, mut binary) = (false, false, false);
    let t = Instant::now();
    while !(malformed && unknown && binary) {
        assert!(t.elapsed() < Duration::from_secs(5), "{malformed} {unknown} {binary}");
        match w.read().unwrap() {
            Message::Text(t) => match serde_json::from_str::<Value>(t.as_str()) {
                Err(_) => malformed = true,
                Ok(v) if v["stream"] != "btcusdt@trade" => {
                    assert_eq!(v["stream"], "btcusdt@kline_1m");
                    unknown = true;
                }
                Ok(_) => {}
            },
            Message::Binary(_) => binary = true,
            _ => {}
        }
    }
    // Counters are bumped after the write, so the client can be faster than them.
    assert!(wait_for(Duration::from_secs(2), || {
        let c = sim.counters();
        (c.malformed_sent, c.unknown_stream_sent, c.binary_sent) == (1, 1, 1)
    }));
}

#[test]
fn timed_faults_from_the_plan() {
    let sim = sim_with(FaultPlan { close_after: Some(Duration::from_millis(300)), ..no_ping() }, 2_000);
    let mut w = ws(&sim, "/stream?streams=btcusdt@trade");
    let code = loop {
        match w.read() {
            Ok(Message::Close(f)) => break f.map(|f| f.code),
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(code, Some(CloseCode::Away));
}

#[test]
fn live_control_messages() {
    // Six requests within a second: past Binance's five a second, which this test is not about.
    let sim = sim_with(FaultPlan { max_incoming_per_sec: None, ..no_ping() }, 2_000);
    let mut w = ws(&sim, "/ws");
    let send = |w: &mut tungstenite::WebSocket<util::Stream>, s: &str| {
        w.send(Message::text(s)).unwrap();
    };
    send(&mut w, r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@depth@100ms"],"id":1}"#);
    assert_eq!(next_text(&mut w, Duration::from_secs(5)), r#"{"result":null,"id":1}"#);
    // Raw (/ws) framing by default: trade and depth payloads unwrapped.
    let mut kinds = std::collections::HashSet::new();
    while kinds.len() < 2 {
        let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(5))).unwrap();
        kinds.insert(v["e"].as_str().unwrap().to_string());
    }
    send(&mut w, r#"{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":"x2"}"#);
    send(&mut w, r#"{"method":"SET_PROPERTY","params":["combined",true],"id":3}"#);
    send(&mut w, r#"{"method":"LIST_SUBSCRIPTIONS","id":4}"#);
    send(&mut w, r#"{"method":"GET_PROPERTY","params":["combined"],"id":5}"#);
    send(&mut w, r#"{"method":"NOPE","id":6}"#);
    let want = [
        r#"{"result":null,"id":"x2"}"#,
        r#"{"result":null,"id":3}"#,
        r#"{"result":["btcusdt@depth@100ms"],"id":4}"#,
        r#"{"result":true,"id":5}"#,
    ];
    let mut got = Vec::new();
    let mut wrapped_after = false;
    let t = Instant::now();
    while got.len() < 5 {
        assert!(t.elapsed() < Duration::from_secs(5), "{got:?}");
        let text = next_text(&mut w, Duration::from_secs(5));
        // Replies: results echo the id; documented errors are `{"code":..,"msg":..}`.
        if (text.contains("\"id\":") || text.starts_with("{\"code\":")) && !text.contains("\"e\":") {
            got.push(text);
        } else if got.len() >= 2 && text.starts_with("{\"stream\":\"btcusdt@depth@100ms\"") {
            wrapped_after = true;
        } else if got.len() >= 2 {
            assert!(!text.contains("\"e\":\"trade\""), "unsubscribed stream still sent: {text}");
        }
    }
    assert_eq!(&got[..4], &want[..]);
    assert!(got[4].starts_with(r#"{"code":2,"msg":"Invalid request: unknown variant `NOPE`"#), "{}", got[4]);
    if !wrapped_after {
        let text = next_text(&mut w, Duration::from_secs(5));
        assert!(text.starts_with("{\"stream\":\"btcusdt@depth@100ms\",\"data\":"), "{text}");
    }
    let c = sim.counters();
    assert_eq!((c.control_requests, c.control_errors), (6, 1));
}

#[test]
fn more_than_the_incoming_limit_disconnects() {
    let sim = sim_with(no_ping(), 1_000);
    sim.faults().set_max_incoming_per_sec(Some(5));
    // Five requests in a second are fine.
    let mut ok = ws(&sim, "/ws");
    for id in 0..5 {
        ok.send(Message::text(format!(r#"{{"method":"LIST_SUBSCRIPTIONS","id":{id}}}"#))).unwrap();
        assert_eq!(next_text(&mut ok, Duration::from_secs(5)), format!(r#"{{"result":[],"id":{id}}}"#));
    }
    // Six are not (pings count too).
    let mut raw = RawWs::open(&sim, "/ws");
    for _ in 0..6 {
        raw.send(0x9, b"hi").unwrap();
    }
    let mut code = None;
    while let Ok(f) = raw.read_frame() {
        if f.opcode == 0x8 {
            code = Some(u16::from_be_bytes([f.payload[0], f.payload[1]]));
            break;
        }
    }
    assert_eq!(code, Some(1008));
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_rate_limit == 1));
    assert_eq!(sim.counters().client_pings, 5, "the sixth frame is the violation");
}

// ---- Lag, pause, injected frames, a late close ----

/// The trade id and `E` of a combined trade message, if it is one.
fn trade(text: &str) -> Option<(u64, i64)> {
    let v: Value = serde_json::from_str(text).ok()?;
    (v["data"]["e"] == "trade").then(|| (v["data"]["t"].as_u64().unwrap(), v["data"]["E"].as_i64().unwrap()))
}

/// Reads `ahead` up to its next trade, then `behind` up to the same trade. Returns how much later
/// `behind` delivered it and the two `E` stamps (ms).
fn lateness(
    ahead: &mut tungstenite::WebSocket<util::Stream>,
    behind: &mut tungstenite::WebSocket<util::Stream>,
) -> (Duration, i64, i64) {
    let (id, e_ahead) = loop {
        if let Some(t) = trade(&next_text(ahead, Duration::from_secs(5))) {
            break t;
        }
    };
    let t_ahead = Instant::now();
    loop {
        if let Some((i, e)) = trade(&next_text(behind, Duration::from_secs(5))) {
            assert!(i <= id, "{i} came before {id} on the lagged connection");
            if i == id {
                return (t_ahead.elapsed(), e_ahead, e);
            }
        }
    }
}

#[test]
fn lag_on_open_connections_puts_them_behind_newer_ones() {
    let sim = sim_with(no_ping(), 1_000);
    let mut old = ws(&sim, "/stream?streams=btcusdt@trade");
    next_text(&mut old, Duration::from_secs(5));
    assert_eq!(sim.faults().lag_open_connections(Duration::from_millis(250)), 1);
    // Opened after the call: not lagged, so it is ahead of the old one.
    let mut new = ws(&sim, "/stream?streams=btcusdt@trade");
    let (late, e_new, e_old) = lateness(&mut new, &mut old);
    assert!(late >= Duration::from_millis(200) && late < Duration::from_secs(2), "{late:?}");
    // The lag is transport time: E is the same on both copies.
    assert!((e_new - e_old).abs() <= 20, "E {e_new} vs {e_old}");
    assert!(sim.counters().lagged_messages > 0);
    // Off again: once what was held back is out, nothing more is late.
    assert_eq!(sim.faults().lag_open_connections(Duration::ZERO), 2);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(400) {
        next_text(&mut old, Duration::from_secs(5));
    }
    let (a, sent_a) = (sim.counters().lagged_messages, sim.counters().messages_sent);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        next_text(&mut old, Duration::from_secs(5));
    }
    let c = sim.counters();
    assert_eq!(c.lagged_messages, a, "still writing late after the lag was removed");
    assert!(c.messages_sent > sent_a);
}

#[test]
fn lag_on_new_connections_puts_them_behind_older_ones() {
    let sim = sim_with(no_ping(), 1_000);
    sim.faults().lag_new_connections(Duration::from_millis(250));
    let mut lagged = ws(&sim, "/stream?streams=btcusdt@trade");
    sim.faults().lag_new_connections(Duration::ZERO);
    let mut fresh = ws(&sim, "/stream?streams=btcusdt@trade");
    assert_eq!(sim.open_connections(), 2);
    let (late, _, _) = lateness(&mut fresh, &mut lagged);
    assert!(late >= Duration::from_millis(200) && late < Duration::from_secs(2), "{late:?}");
    // Control replies wait behind the market data held back before them.
    lagged.send(Message::text(r#"{"method":"LIST_SUBSCRIPTIONS","id":1}"#)).unwrap();
    let t = Instant::now();
    while next_text(&mut lagged, Duration::from_secs(5)) != r#"{"result":["btcusdt@trade"],"id":1}"# {}
    assert!(t.elapsed() >= Duration::from_millis(200), "{:?}", t.elapsed());
}

#[test]
fn a_paused_market_is_silent_then_resumes_at_its_pace() {
    let sim = sim_with(no_ping(), 500);
    let mut w = ws(&sim, "/stream?streams=btcusdt@trade/btcusdt@depth@100ms/btcusdt@bookTicker");
    next_text(&mut w, Duration::from_secs(5));
    sim.faults().set_market_paused(true);
    assert!(wait_for(Duration::from_secs(2), || sim.counters().market_pauses == 1));
    // What was in flight drains; then nothing for 600 ms, on an open connection.
    w.get_ref().tcp().set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    loop {
        match w.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                break
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (published, id) = (sim.counters().events_published, sim.last_update_id("BTCUSDT").unwrap());
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(sim.counters().events_published, published);
    assert_eq!(sim.open_connections(), 1);
    let depth = util::get(&sim, "/api/v3/depth?symbol=BTCUSDT&limit=5");
    assert_eq!(depth.json()["lastUpdateId"].as_u64(), Some(id), "REST serves the paused book");
    sim.faults().set_market_paused(false);
    w.get_ref().tcp().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    next_text(&mut w, Duration::from_secs(5));
    // 500 messages a second from the resume on, not the hundreds that fell due while paused at once.
    std::thread::sleep(Duration::from_millis(200));
    let after = sim.counters().events_published - published;
    assert!(after <= 200, "{after} messages in the 200 ms after the resume");
    assert_eq!(sim.counters().market_pauses, 1);
}

#[test]
fn injected_frames_reach_every_open_connection_as_written() {
    let sim = sim_with(no_ping(), 1_000);
    // `/ws` with no subscription: nothing but the injected frames arrives.
    let mut a = RawWs::open(&sim, "/ws");
    let mut b = RawWs::open(&sim, "/ws");
    assert!(wait_for(Duration::from_secs(2), || sim.open_connections() == 2));
    let f = sim.faults();
    assert_eq!(f.inject(Inject::Text("not json at all".into())), 2);
    assert_eq!(f.inject(Inject::Fragmented("abcdef".into(), 3)), 2);
    assert_eq!(f.inject(Inject::Binary(vec![0, 1, 2])), 2);
    assert_eq!(f.inject(Inject::Raw(vec![0xC1, 0x02, b'{', b'}'])), 2);
    assert_eq!(f.inject(Inject::Ping(b"abc".to_vec())), 2);
    for raw in [&mut a, &mut b] {
        let fr = raw.read_frame().unwrap();
        assert_eq!((fr.opcode, fr.fin, fr.payload.as_slice()), (0x1, true, &b"not json at all"[..]));
        for (op, fin, part) in [(0x1, false, "ab"), (0x0, false, "cd"), (0x0, true, "ef")] {
            let fr = raw.read_frame().unwrap();
            assert_eq!((fr.opcode, fr.fin, fr.payload.as_slice()), (op, fin, part.as_bytes()));
        }
        let fr = raw.read_frame().unwrap();
        assert_eq!((fr.opcode, fr.payload.as_slice()), (0x2, &[0u8, 1, 2][..]));
        // The raw bytes arrive exactly as given: RSV1 set, which no frame writer would do.
        let mut bytes = [0u8; 4];
        raw.s.read_exact(&mut bytes).unwrap();
        assert_eq!(bytes, [0xC1, 0x02, b'{', b'}']);
        let fr = raw.read_frame().unwrap();
        assert_eq!((fr.opcode, fr.payload.as_slice()), (0x9, &b"abc"[..]));
        raw.send(0xA, b"abc").unwrap();
    }
    assert!(wait_for(Duration::from_secs(2), || sim.counters().pongs_matched == 2), "{:?}", sim.counters());
    let c = sim.counters();
    assert_eq!(c.frames_injected, 10);
    assert_eq!(c.disconnects_pong_mismatch, 0);
    // A connection opened later gets none of them.
    let mut late = ws(&sim, "/ws");
    late.get_ref().tcp().set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert!(matches!(late.read(), Err(tungstenite::Error::Io(_))), "an earlier injection reached a later connection");
}

#[test]
fn server_shutdown_with_a_late_close_streams_until_the_close() {
    let sim = sim_with(no_ping(), 1_000);
    let mut w = ws(&sim, "/stream?streams=btcusdt@trade");
    next_text(&mut w, Duration::from_secs(5));
    sim.faults().server_shutdown_then_close(Duration::from_millis(600));
    let mut event_at = None;
    let mut after_event = 0;
    let code = loop {
        match w.read().unwrap() {
            Message::Text(t) if t.as_str().starts_with("{\"stream\":\"!serverShutdown\"") => {
                event_at = Some(Instant::now());
            }
            Message::Text(_) if event_at.is_some() => after_event += 1,
            Message::Close(f) => break f.map(|f| f.code),
            _ => {}
        }
    };
    let waited = event_at.expect("serverShutdown before the close").elapsed();
    assert_eq!(code, Some(CloseCode::Away));
    assert!(waited >= Duration::from_millis(550) && waited < Duration::from_millis(1600), "{waited:?}");
    assert!(after_event > 20, "only {after_event} messages between the event and the close");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_server_shutdown == 1));
    assert_eq!(sim.counters().server_shutdowns_sent, 1);
}
