//! Faults aimed at one connection, or at chosen symbols, as a handler with several connections
//! meets them: shards (each connection a subset of symbols) and A/B redundancy (two connections
//! carrying the same streams). Each test opens two connections and checks on the wire that the
//! fault reached the one aimed at and nothing else: a reset, a serverShutdown, a lag, a gap in one
//! symbol's `U`/`u` sequence. `Faults::connections` is what finds the ids.

mod util;

use std::collections::HashMap;
use std::io;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tickfeed_sim::{ConnInfo, FaultPlan, Inject, MarketSource, Pacing, Sim, SimConfig, SimHandle};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};
use util::{next_text, parse_diff, wait_for, ws, RawWs, Stream};

/// BTCUSDT and ETHUSDT at 10x real time: a diff of each every 10 ms, and a few trades per ms.
fn two_symbol_sim() -> SimHandle {
    Sim::start(SimConfig {
        tls: false,
        source: MarketSource::Synthetic { symbols: vec!["btcusdt".into(), "ethusdt".into()], seed: 7 },
        pacing: Pacing::Speed(10.0),
        levels_per_side: 200,
        faults: FaultPlan { ping_interval: None, max_incoming_per_sec: None, ..FaultPlan::default() },
        ..SimConfig::default()
    })
    .unwrap()
}

/// The id of the connection opened last: the largest id listed.
fn newest(sim: &SimHandle) -> u64 {
    sim.faults().connections().last().expect("a live connection").id
}

/// Opens a websocket on `target` and returns it with its connection id.
fn open(sim: &SimHandle, target: &str) -> (WebSocket<Stream>, u64) {
    let w = ws(sim, target);
    (w, newest(sim))
}

/// Opens a raw websocket on `target` and returns it with its connection id.
fn open_raw(sim: &SimHandle, target: &str) -> (RawWs, u64) {
    let w = RawWs::open(sim, target);
    (w, newest(sim))
}

fn info(sim: &SimHandle, id: u64) -> Option<ConnInfo> {
    sim.faults().connections().into_iter().find(|c| c.id == id)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The trade id and `E` (ms) of a combined trade message, if it is one.
fn trade(text: &str) -> Option<(u64, i64)> {
    let v: Value = serde_json::from_str(text).ok()?;
    (v["data"]["e"] == "trade").then(|| (v["data"]["t"].as_u64().unwrap(), v["data"]["E"].as_i64().unwrap()))
}

/// The next trade (id, E) on a raw connection, or the read error that ended it.
fn next_raw_trade(w: &mut RawWs) -> Result<(u64, i64), io::Error> {
    loop {
        let f = w.read_frame()?;
        assert_ne!(f.opcode, 0x8, "a close frame where none was due");
        if f.opcode == 0x1 {
            if let Some(t) = trade(std::str::from_utf8(&f.payload).unwrap()) {
                return Ok(t);
            }
        }
    }
}

#[test]
fn connections_lists_each_one_with_its_streams_as_they_change() {
    let sim = two_symbol_sim();
    let f = sim.faults();
    assert!(f.connections().is_empty());
    let (mut a, a_id) = open(&sim, "/stream?streams=btcusdt@depth@100ms/btcusdt@trade");
    let (_b, b_id) = open(&sim, "/ws/ethusdt@trade");
    let list = f.connections();
    assert_eq!(list.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a_id, b_id], "oldest first");
    assert!(a_id < b_id);
    assert_eq!(list[0].streams, vec!["btcusdt@depth@100ms", "btcusdt@trade"]);
    assert_eq!(list[1].streams, vec!["ethusdt@trade"]);
    assert!(list.iter().all(|c| c.lag.is_zero()));

    // SUBSCRIBE / UNSUBSCRIBE: the list follows, by the time the client has the reply.
    a.send(Message::text(r#"{"method":"SUBSCRIBE","params":["ethusdt@depth@100ms"],"id":1}"#)).unwrap();
    while next_text(&mut a, Duration::from_secs(5)) != r#"{"result":null,"id":1}"# {}
    assert_eq!(info(&sim, a_id).unwrap().streams, vec!["btcusdt@depth@100ms", "btcusdt@trade", "ethusdt@depth@100ms"]);
    a.send(Message::text(r#"{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":2}"#)).unwrap();
    while next_text(&mut a, Duration::from_secs(5)) != r#"{"result":null,"id":2}"# {}
    assert_eq!(info(&sim, a_id).unwrap().streams, vec!["btcusdt@depth@100ms", "ethusdt@depth@100ms"]);
    // A per-symbol drop reads the same list: b carries no depth stream.
    assert_eq!(f.drop_next_diff_on(b_id, &["ethusdt"]), 0);
    assert_eq!(f.drop_next_diff_on(a_id, &["ETHUSDT", "ethusdt", "solusdt"]), 1, "once, in any case");

    assert!(f.lag_connection(b_id, Duration::from_millis(40)));
    assert_eq!(info(&sim, b_id).unwrap().lag, Duration::from_millis(40));
    assert!(info(&sim, a_id).unwrap().lag.is_zero());

    // Gone once closed; every per-connection fault then says there is no such connection.
    a.close(None).unwrap();
    assert!(wait_for(Duration::from_secs(2), || f.connections().len() == 1), "{:?}", f.connections());
    assert_eq!(f.connections()[0].id, b_id);
    assert!(!f.abort_connection(a_id));
    assert!(!f.close_connection(a_id));
    assert!(!f.server_shutdown_connection(a_id, Duration::ZERO));
    assert!(!f.lag_connection(a_id, Duration::from_millis(1)));
    assert_eq!(f.drop_next_diff_on(a_id, &["btcusdt"]), 0);
}

#[test]
fn abort_one_connection_and_the_other_keeps_streaming() {
    let sim = two_symbol_sim();
    // A and B: the same stream twice.
    let (mut a, a_id) = open_raw(&sim, "/stream?streams=btcusdt@trade");
    let (mut b, b_id) = open_raw(&sim, "/stream?streams=btcusdt@trade");
    next_raw_trade(&mut a).unwrap();
    next_raw_trade(&mut b).unwrap();
    assert!(sim.faults().abort_connection(a_id));
    let mut last_a = 0;
    let err = loop {
        match next_raw_trade(&mut a) {
            Ok((t, _)) => last_a = t,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    // B goes on well past the last trade A got before its reset.
    let t = Instant::now();
    let mut past = 0;
    while past < 50 {
        assert!(t.elapsed() < Duration::from_secs(5), "B stalled after A's reset");
        if next_raw_trade(&mut b).unwrap().0 > last_a {
            past += 1;
        }
    }
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_abort == 1));
    // Listed until its thread is gone, a moment after the counter.
    let ids = || sim.faults().connections().iter().map(|c| c.id).collect::<Vec<u64>>();
    assert!(wait_for(Duration::from_secs(2), || ids() == vec![b_id]), "{:?}", ids());
    let c = sim.counters();
    assert_eq!((c.disconnects_abort, c.disconnects_close_1001, c.disconnects_io_error), (1, 0, 0));
}

#[test]
fn close_one_connection_with_1001_and_inject_into_the_other() {
    let sim = two_symbol_sim();
    let (mut a, a_id) = open(&sim, "/stream?streams=btcusdt@trade");
    let (mut b, b_id) = open(&sim, "/stream?streams=btcusdt@trade");
    // A frame for B alone, then the close for A alone.
    assert!(sim.faults().inject_connection(b_id, Inject::Text("for b only".into())));
    assert!(sim.faults().close_connection(a_id));
    let code = loop {
        match a.read() {
            Ok(Message::Close(f)) => break f.map(|f| f.code),
            Ok(Message::Text(t)) => assert_ne!(t.as_str(), "for b only", "B's injected frame reached A"),
            Ok(_) => continue,
            Err(e) => panic!("expected a close frame, got {e}"),
        }
    };
    assert_eq!(code, Some(CloseCode::Away));
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_close_1001 == 1));
    // B is open and streaming, with its frame.
    while next_text(&mut b, Duration::from_secs(5)) != "for b only" {}
    for _ in 0..20 {
        assert!(trade(&next_text(&mut b, Duration::from_secs(5))).is_some());
    }
    assert!(wait_for(Duration::from_secs(2), || sim.open_connections() == 1));
    assert_eq!(sim.counters().frames_injected, 1);
}

#[test]
fn server_shutdown_reaches_only_the_connection_aimed_at() {
    let sim = two_symbol_sim();
    let (mut a, a_id) = open(&sim, "/stream?streams=btcusdt@trade");
    let (mut b, b_id) = open(&sim, "/stream?streams=btcusdt@trade");
    next_text(&mut a, Duration::from_secs(5));
    assert!(sim.faults().server_shutdown_connection(a_id, Duration::from_millis(300)));
    // A: the event, trades meanwhile, then 1001 about 300 ms later.
    let mut event_at = None;
    let mut after_event = 0;
    let mut last_a = 0;
    let code = loop {
        match a.read().unwrap() {
            Message::Text(t) if t.as_str().starts_with("{\"stream\":\"!serverShutdown\"") => {
                assert!(event_at.is_none(), "one event");
                event_at = Some(Instant::now());
            }
            Message::Text(t) => {
                if let Some((id, _)) = trade(t.as_str()) {
                    last_a = id;
                    after_event += u32::from(event_at.is_some());
                }
            }
            Message::Close(f) => break f.map(|f| f.code),
            _ => {}
        }
    };
    let waited = event_at.expect("serverShutdown before the close").elapsed();
    assert_eq!(code, Some(CloseCode::Away));
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_millis(1500), "{waited:?}");
    assert!(after_event > 10, "only {after_event} trades between the event and the close");
    // B: every trade up to and past A's close, and no event.
    let t = Instant::now();
    loop {
        assert!(t.elapsed() < Duration::from_secs(5), "B stalled");
        let text = next_text(&mut b, Duration::from_secs(5));
        assert!(!text.contains("serverShutdown"), "B got A's event: {text}");
        if trade(&text).is_some_and(|(id, _)| id > last_a + 20) {
            break;
        }
    }
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_server_shutdown == 1));
    assert_eq!(sim.counters().server_shutdowns_sent, 1);
    let ids = || sim.faults().connections().iter().map(|c| c.id).collect::<Vec<u64>>();
    assert!(wait_for(Duration::from_secs(2), || ids() == vec![b_id]), "{:?}", ids());
}

/// What a reader thread saw of one connection: (trade id, E ms, wall clock ms when read).
type Seen = Vec<(u64, i64, i64)>;

/// Reads trades on `w` in a thread of its own until `until`, so neither connection waits in a
/// socket buffer while the other is read.
fn read_trades(mut w: WebSocket<Stream>, until: Instant) -> thread::JoinHandle<Seen> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        while Instant::now() < until {
            if let Some((id, e)) = trade(&next_text(&mut w, Duration::from_secs(5))) {
                seen.push((id, e, now_ms()));
            }
        }
        seen
    })
}

#[test]
fn a_lagged_connection_is_late_with_e_unchanged_and_the_other_on_time() {
    let sim = two_symbol_sim();
    let (a, a_id) = open(&sim, "/stream?streams=btcusdt@trade");
    let (b, _) = open(&sim, "/stream?streams=btcusdt@trade");
    let lag = Duration::from_millis(250);
    let set_ms = now_ms();
    assert!(sim.faults().lag_connection(a_id, lag));
    let until = Instant::now() + Duration::from_millis(1200);
    let (a, b) = (read_trades(a, until), read_trades(b, until));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let on_b: HashMap<u64, (i64, i64)> = b.iter().map(|&(id, e, at)| (id, (e, at))).collect();
    // Trades taken well after the call: A has each one 250 ms after B, with the same E.
    let lagged: Vec<_> = a.iter().filter(|(_, e, _)| *e >= set_ms + 50).collect();
    assert!(lagged.len() > 100, "only {} lagged trades", lagged.len());
    let mut compared = 0;
    for &&(id, e, at) in &lagged {
        assert!(at - e >= 240, "trade {id} arrived {} ms after its E on the lagged connection", at - e);
        if let Some(&(e_b, at_b)) = on_b.get(&id) {
            assert!((e - e_b).abs() <= 20, "E {e} vs {e_b}: the lag is transport time");
            assert!(at - at_b >= 200, "trade {id} only {} ms later on A", at - at_b);
            compared += 1;
        }
    }
    assert!(compared > 100, "{compared}");
    // B is on time: E is stamped when written, so read minus E is transport (and scheduling).
    let mut late_b: Vec<i64> = b.iter().map(|&(_, e, at)| at - e).collect();
    late_b.sort_unstable();
    assert!(late_b.len() > 100);
    let median = late_b[late_b.len() / 2];
    assert!(median < 50, "B's median read-minus-E {median} ms");
    assert!(late_b.iter().filter(|&&d| d >= 200).count() * 50 < late_b.len(), "B looks lagged: {late_b:?}");
    assert!(sim.counters().lagged_messages > 0);
}

#[test]
fn a_lagged_connection_acts_on_its_faults_behind_the_lag() {
    let sim = two_symbol_sim();
    let (mut a, a_id) = open(&sim, "/stream?streams=btcusdt@trade");
    assert!(sim.faults().lag_connection(a_id, Duration::from_millis(300)));
    // Let the lag take hold, then aim a shutdown at A: what A took before it still goes out first.
    thread::sleep(Duration::from_millis(50));
    let call_ms = now_ms();
    let t = Instant::now();
    assert!(sim.faults().server_shutdown_connection(a_id, Duration::ZERO));
    let mut before = 0;
    let mut last_e = 0;
    loop {
        let text = next_text(&mut a, Duration::from_secs(5));
        if text.contains("serverShutdown") {
            break;
        }
        if let Some((_, e)) = trade(&text) {
            before += 1;
            last_e = e;
        }
    }
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(250), "the event jumped the lag: {waited:?}");
    assert!(before > 20, "only {before} held-back trades before the event");
    assert!(last_e <= call_ms + 20, "a trade taken after the fault ({last_e} vs {call_ms}) came before it");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().disconnects_server_shutdown == 1));
}

/// Per-stream continuity of depth diffs read on one connection: the last `u` and every gap seen
/// as (previous u, next U).
#[derive(Debug, Default)]
struct Sequences(HashMap<String, (u64, Vec<(u64, u64)>)>);

impl Sequences {
    /// Reads diffs on `w` until each of `streams` has `n` more. Panics on a diff that goes
    /// backwards or overlaps the one before it.
    fn read(&mut self, w: &mut WebSocket<Stream>, streams: &[&str], n: usize) -> &mut Self {
        let mut diffs: HashMap<String, usize> = HashMap::new();
        let t = Instant::now();
        while streams.iter().any(|s| diffs.get(*s).copied().unwrap_or(0) < n) {
            assert!(t.elapsed() < Duration::from_secs(5), "too few diffs: {diffs:?}");
            let v: Value = serde_json::from_str(&next_text(w, Duration::from_secs(5))).unwrap();
            let stream = v["stream"].as_str().unwrap().to_string();
            let d = parse_diff(&v["data"]);
            *diffs.entry(stream.clone()).or_default() += 1;
            match self.0.get_mut(&stream) {
                None => {
                    self.0.insert(stream, (d.last, Vec::new()));
                }
                Some((prev, gaps)) => {
                    assert!(d.first > *prev, "U {} after u {prev}", d.first);
                    if d.first > *prev + 1 {
                        gaps.push((*prev, d.first));
                    }
                    *prev = d.last;
                }
            }
        }
        self
    }

    /// The gaps seen so far on `stream`.
    fn gaps(&self, stream: &str) -> &[(u64, u64)] {
        self.0.get(stream).map_or(&[], |(_, g)| g.as_slice())
    }
}

#[test]
fn a_gap_on_one_symbol_and_none_on_the_other() {
    let sim = two_symbol_sim();
    let (mut w, _) = open(&sim, "/stream?streams=btcusdt@depth@100ms/ethusdt@depth@100ms");
    // A connection carrying only ETHUSDT's depth (and BTCUSDT's trades) is not armed.
    let (_other, other_id) = open(&sim, "/stream?streams=ethusdt@depth@100ms/btcusdt@trade");
    let (btc, eth) = ("btcusdt@depth@100ms", "ethusdt@depth@100ms");
    let mut seq = Sequences::default();
    seq.read(&mut w, &[btc, eth], 10);
    assert!(seq.gaps(btc).is_empty() && seq.gaps(eth).is_empty(), "{seq:?}");
    assert_eq!(sim.faults().drop_next_diff_of(&["BTCUSDT"]), 1);
    seq.read(&mut w, &[btc, eth], 40);
    assert_eq!(seq.gaps(btc).len(), 1, "{seq:?}");
    assert!(seq.gaps(eth).is_empty(), "{seq:?}");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().gaps_injected == 1), "{:?}", sim.counters());
    // Both symbols at once: one drop on each connection per symbol it carries the depth of.
    assert_eq!(sim.faults().drop_next_diff_of(&["btcusdt", "ethusdt"]), 3);
    seq.read(&mut w, &[btc, eth], 40);
    assert_eq!((seq.gaps(btc).len(), seq.gaps(eth).len()), (2, 1), "{seq:?}");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().gaps_injected == 4), "{:?}", sim.counters());
    // Armed twice before the connection acts: two diffs skipped, as two global drops would.
    let w_id = sim.faults().connections()[0].id;
    assert_eq!(sim.faults().drop_next_diff_on(w_id, &["ethusdt"]), 1);
    assert_eq!(sim.faults().drop_next_diff_on(w_id, &["ethusdt"]), 1);
    seq.read(&mut w, &[btc, eth], 40);
    assert_eq!(seq.gaps(btc).len(), 2, "{seq:?}");
    assert!(seq.gaps(eth).len() >= 2, "{seq:?}");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().gaps_injected == 6), "{:?}", sim.counters());
    assert!(info(&sim, other_id).is_some());
}

#[test]
fn a_gap_on_one_copy_of_a_b_connections() {
    let sim = two_symbol_sim();
    let target = "/stream?streams=btcusdt@depth@100ms";
    let (mut a, a_id) = open(&sim, target);
    let (mut b, _) = open(&sim, target);
    let stream = "btcusdt@depth@100ms";
    let mut on_a = Sequences::default();
    on_a.read(&mut a, &[stream], 5);
    assert_eq!(sim.faults().drop_next_diff_on(a_id, &["btcusdt"]), 1);
    on_a.read(&mut a, &[stream], 40);
    assert_eq!(on_a.gaps(stream).len(), 1, "{on_a:?}");
    let (prev_u, next_first) = on_a.gaps(stream)[0];
    // B has no gap, and carries the very diff A lost: the one starting at A's previous u + 1.
    let mut on_b = Sequences::default();
    let mut lost_on_b = false;
    let last_u = |seq: &Sequences| seq.0.get(stream).map(|(u, _)| *u);
    while last_u(&on_b).is_none_or(|u| u < next_first) {
        let before = last_u(&on_b);
        on_b.read(&mut b, &[stream], 1);
        lost_on_b |= before == Some(prev_u) && last_u(&on_b) == Some(next_first - 1);
    }
    assert!(on_b.gaps(stream).is_empty(), "{on_b:?}");
    assert!(lost_on_b, "B did not carry the diff A lost (after u {prev_u}, up to {next_first} - 1)");
    assert!(wait_for(Duration::from_secs(2), || sim.counters().gaps_injected == 1), "{:?}", sim.counters());
}
