//! The `stream-sbe` endpoint (`SimConfig::sbe`) as a client sees it on the wire: the upgrade needs
//! an `X-MBX-APIKEY` header, and market events come as binary frames, one SBE message each. The
//! SBE header is checked byte by byte here (this crate's tests do not use tickfeed's decoder).

mod util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use tickfeed_sim::{MarketSource, Pacing, Sim, SimConfig, SimHandle};
use util::{connect, RawWs};

fn sbe_sim() -> SimHandle {
    Sim::start(SimConfig {
        tls: false,
        sbe: true,
        source: MarketSource::Synthetic { symbols: vec!["btcusdt".into()], seed: 7 },
        pacing: Pacing::Rate(5_000),
        levels_per_side: 300,
        ..SimConfig::default()
    })
    .unwrap()
}

/// Sends an upgrade for `target` with `extra` header lines; returns the stream and the answer's
/// head (up to the blank line).
fn upgrade(sim: &SimHandle, target: &str, extra: &str) -> (util::Stream, String) {
    let mut s = connect(sim);
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: stream-sbe.binance.com:9443\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    (s, String::from_utf8(head).unwrap())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

#[test]
fn sbe_streams_send_binary_frames_with_sbe_headers() {
    let sim = sbe_sim();
    let (s, head) = upgrade(&sim, "/stream?streams=btcusdt@depth/btcusdt@trade", "X-MBX-APIKEY: test-ed25519-key\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut ws = RawWs { s };
    let (mut diffs, mut trades) = (0, 0);
    let (mut last_trade, mut most_in_one) = (None::<u64>, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while (diffs < 3 || trades < 3 || most_in_one < 2) && Instant::now() < deadline {
        let f = ws.read_frame().unwrap();
        if f.opcode == 0x9 {
            continue; // a ping
        }
        assert_eq!(f.opcode, 0x2, "market data must be binary frames: {:?}", String::from_utf8_lossy(&f.payload));
        assert!(f.fin);
        let b = &f.payload;
        assert!(b.len() >= 8, "{b:?}");
        let (block_length, template, schema, version) = (u16_at(b, 0), u16_at(b, 2), u16_at(b, 4), u16_at(b, 6));
        assert_eq!(&b[4..6], &[1, 0], "schemaId 1, little-endian");
        assert_eq!((schema, version), (1, 0));
        // The symbol is the varString8 that ends every message.
        assert!(b.ends_with(b"\x07BTCUSDT"), "{b:?}");
        match template {
            10003 => {
                assert_eq!(block_length, 26, "DepthDiffStreamEvent root block");
                let first = u64::from_le_bytes(b[16..24].try_into().unwrap());
                let last = u64::from_le_bytes(b[24..32].try_into().unwrap());
                assert!(first <= last && first > 0, "{first}..{last}");
                diffs += 1;
            }
            10000 => {
                assert_eq!(block_length, 18, "TradesStreamEvent root block");
                // groupSizeEncoding: blockLength 25, numInGroup: the taker's trades (at least 1).
                assert_eq!(u16_at(b, 26), 25);
                let n = u32::from_le_bytes(b[28..32].try_into().unwrap()) as usize;
                assert!(n >= 1);
                let maker = b[32 + 24];
                for i in 0..n {
                    let e = 32 + 25 * i;
                    let id = u64::from_le_bytes(b[e..e + 8].try_into().unwrap());
                    // Trade ids run on without a hole, inside an event and from one to the next.
                    if let Some(l) = last_trade {
                        assert_eq!(id, l + 1, "trade ids must be consecutive");
                    }
                    last_trade = Some(id);
                    assert_eq!(b[e + 24], maker, "one taker: one side");
                }
                most_in_one = most_in_one.max(n);
                trades += 1;
            }
            t => panic!("unexpected templateId {t} for @depth/@trade"),
        }
        // eventTime is microseconds since the epoch.
        let event_time = i64::from_le_bytes(b[8..16].try_into().unwrap());
        assert!(event_time > 1_600_000_000_000_000, "{event_time}");
    }
    assert!(diffs >= 3 && trades >= 3, "diffs {diffs}, trades {trades}");
    assert!(most_in_one >= 2, "a taker's several trades come in one TradesStreamEvent");
}

#[test]
fn best_bid_ask_is_served_on_the_raw_form() {
    let sim = sbe_sim();
    let (s, head) = upgrade(&sim, "/ws/btcusdt@bestBidAsk", "X-MBX-APIKEY: k\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut ws = RawWs { s };
    let f = loop {
        let f = ws.read_frame().unwrap();
        if f.opcode != 0x9 {
            break f;
        }
    };
    assert_eq!(f.opcode, 0x2);
    assert_eq!((u16_at(&f.payload, 0), u16_at(&f.payload, 2), u16_at(&f.payload, 4)), (50, 10001, 1));
}

#[test]
fn depth20_snapshots_follow_the_diffs() {
    let sim = sbe_sim();
    let (s, head) = upgrade(&sim, "/stream?streams=btcusdt@depth20/btcusdt@depth", "X-MBX-APIKEY: k\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut ws = RawWs { s };
    let mut last_diff = None;
    let mut pending = None;
    let mut checked = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while checked < 3 {
        assert!(Instant::now() < deadline, "too few depth20 snapshots");
        let f = ws.read_frame().unwrap();
        if f.opcode == 0x9 {
            continue;
        }
        assert_eq!(f.opcode, 0x2);
        let b = &f.payload;
        match u16_at(b, 2) {
            10003 => {
                let last = u64::from_le_bytes(b[24..32].try_into().unwrap());
                if let Some(snap) = pending.take() {
                    assert_eq!(snap, last, "the snapshot is the book after the diff sent with it");
                    checked += 1;
                }
                last_diff = Some(last);
            }
            10002 => {
                assert_eq!(u16_at(b, 0), 18, "DepthSnapshotStreamEvent root block");
                let id = u64::from_le_bytes(b[16..24].try_into().unwrap());
                // bids: groupSize16Encoding (blockLength 16, numInGroup 20) after the 26 bytes.
                assert_eq!((u16_at(b, 26), u16_at(b, 28)), (16, 20));
                let asks_at = 30 + 20 * 16;
                assert_eq!((u16_at(b, asks_at), u16_at(b, asks_at + 2)), (16, 20));
                assert!(b.ends_with(b"\x07BTCUSDT"));
                if let Some(prev) = last_diff {
                    assert!(id > prev, "snapshot {id} after diff {prev}");
                }
                // One price exponent for the message: best bid mantissa below best ask's.
                let bid = i64::from_le_bytes(b[30..38].try_into().unwrap());
                let ask = i64::from_le_bytes(b[asks_at + 4..asks_at + 12].try_into().unwrap());
                assert!(0 < bid && bid < ask, "{bid} {ask}");
                // Sent right before the diff that led to it.
                pending = Some(id);
            }
            t => panic!("templateId {t}"),
        }
    }
}

#[test]
fn live_subscribe_replies_in_json_text_then_streams_binary() {
    let sim = sbe_sim();
    let (s, head) = upgrade(&sim, "/ws", "X-MBX-APIKEY: k\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut ws = RawWs { s };
    ws.send(0x1, br#"{"method":"SUBSCRIBE","params":["btcusdt@bestBidAsk"],"id":1}"#).unwrap();
    let mut replied = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no bestBidAsk frame after the reply");
        let f = ws.read_frame().unwrap();
        match f.opcode {
            0x9 => continue,
            0x1 => {
                assert!(!replied);
                assert_eq!(f.payload, br#"{"result":null,"id":1}"#);
                replied = true;
            }
            0x2 => {
                assert!(replied, "the reply comes before the stream's first event");
                assert_eq!(u16_at(&f.payload, 2), 10001);
                break;
            }
            op => panic!("opcode {op}"),
        }
    }
}

#[test]
fn an_sbe_upgrade_without_the_api_key_is_refused() {
    let sim = sbe_sim();
    for extra in ["", "X-MBX-APIKEY: \r\n"] {
        let (mut s, head) = upgrade(&sim, "/ws/btcusdt@depth", extra);
        assert!(head.starts_with("HTTP/1.1 401 Unauthorized"), "{head}");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        assert!(body.contains("X-MBX-APIKEY"), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["code"], -2014);
    }
}

#[test]
fn json_streams_ignore_the_sbe_switch_when_off() {
    let sim = Sim::start(SimConfig { tls: false, levels_per_side: 300, ..SimConfig::default() }).unwrap();
    // No key needed, and text frames as before.
    let (s, head) = upgrade(&sim, "/ws/btcusdt@depth@100ms", "");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut ws = RawWs { s };
    let f = loop {
        let f = ws.read_frame().unwrap();
        if f.opcode != 0x9 {
            break f;
        }
    };
    assert_eq!(f.opcode, 0x1);
    assert!(f.payload.starts_with(b"{\"e\":\"depthUpdate\""), "{:?}", String::from_utf8_lossy(&f.payload));
}

/// One upgrade to `addr` (plain TCP) for `target`; returns the socket and the answer's head.
fn upgrade_at(addr: std::net::SocketAddr, target: &str, extra: &str) -> (std::net::TcpStream, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    (s, String::from_utf8(head).unwrap())
}

#[test]
fn a_second_listener_serves_sbe_for_the_same_market_while_the_first_stays_json() {
    let sim = Sim::start(SimConfig {
        tls: false,
        sbe_listen: Some("127.0.0.1:0".parse().unwrap()),
        source: MarketSource::Synthetic { symbols: vec!["btcusdt".into()], seed: 7 },
        pacing: Pacing::Rate(5_000),
        levels_per_side: 300,
        ..SimConfig::default()
    })
    .unwrap();
    let sbe = sim.sbe_addr().unwrap();
    assert_ne!(sbe, sim.local_addr());
    assert_eq!(sim.sbe_ws_base().unwrap(), format!("ws://{sbe}"));
    // JSON on the first, no key needed.
    let (s, head) = upgrade_at(sim.local_addr(), "/ws/btcusdt@depth@100ms", "");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut json = RawWs { s: util::Stream::Plain(s) };
    // SBE on the second: the key is required there.
    let (_, head) = upgrade_at(sbe, "/ws/btcusdt@depth", "");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let (s, head) = upgrade_at(sbe, "/ws/btcusdt@depth", "X-MBX-APIKEY: k\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut bin = RawWs { s: util::Stream::Plain(s) };
    let next = |ws: &mut RawWs| loop {
        let f = ws.read_frame().unwrap();
        if f.opcode != 0x9 {
            break f;
        }
    };
    // The same market: the SBE diffs carry the ids the JSON diffs do.
    let mut json_ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let f = next(&mut json);
        assert_eq!(f.opcode, 0x1);
        let v: serde_json::Value = serde_json::from_slice(&f.payload).unwrap();
        json_ids.insert(v["u"].as_u64().unwrap());
    }
    let mut common = 0;
    for _ in 0..20 {
        let f = next(&mut bin);
        assert_eq!(f.opcode, 0x2);
        assert_eq!(u16_at(&f.payload, 2), 10003);
        let last = u64::from_le_bytes(f.payload[24..32].try_into().unwrap());
        common += usize::from(json_ids.contains(&last));
    }
    assert!(common > 0, "the two endpoints serve one market");
}
