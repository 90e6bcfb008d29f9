//! The live hot path allocates nothing after warm-up: the event loop runs in-process against the
//! simulator with a counting allocator that counts only the loop's thread, and a second of
//! steady traffic (socket read -> frames -> pipeline -> output) must add zero allocations, over
//! plain TCP and over TLS alike. Snapshots, reconnects and log lines may allocate; none happens in
//! that second.
//!
//! Over TLS, rustls does the handshake only; after it tickfeed's record layer
//! (`src/net/record.rs`) decrypts each record in place in the session's ciphertext buffer and
//! seals pongs into a preallocated buffer, so the TLS case is held to the same zero. (rustls 0.23
//! itself copies every decrypted record into a fresh `Vec`: about 1,300 allocations in this second
//! before the record layer.) The simulator's TLS 1.3 server also sends its session tickets after
//! the handshake: they arrive during warm-up and are skipped without allocating.

mod util;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tickfeed::binance::StreamKind;
use tickfeed::binance::{parse_rest_base, parse_ws_base};
use tickfeed::live::sbe::{ApiKey, SbeConfig};
use tickfeed::live::{self, LiveConfig};
use tickfeed::net::TlsSetup;
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{Pipeline, PipelineConfig};
use tickfeed::venue::Venue;
use tickfeed_sim::SimHandle;

#[global_allocator]
static A: util::alloc::Counting = util::alloc::Counting;

static STOP: AtomicBool = AtomicBool::new(false);

/// Runs the loop against `sim`; returns (allocations, frees, update ids) over the measured second.
fn measure(sim: &SimHandle, tls: TlsSetup, sbe: bool) -> (u64, u64, u64) {
    measure_on(sim, tls, Venue::Spot, sbe)
}

/// [`measure`] on `venue` (USDⓈ-M futures: a /public and a /market connection); `sbe`: `--feed
/// sbe` against the simulator's SBE listener, depth20 too, aggTrade from its JSON listener
/// alongside.
fn measure_on(sim: &SimHandle, tls: TlsSetup, venue: Venue, sbe: bool) -> (u64, u64, u64) {
    STOP.store(false, Ordering::SeqCst);
    let ws = if sbe { sim.sbe_ws_base().unwrap() } else { sim.ws_base() };
    let mut cfg = LiveConfig::new(parse_ws_base(&ws).unwrap(), parse_rest_base(&sim.rest_base()).unwrap(), tls);
    cfg.busy_poll = false;
    cfg.venue = venue;
    if venue == Venue::UsdM {
        cfg.depth_limit = 1000;
        cfg.weight_per_minute = 2400;
    }
    if sbe {
        cfg.sbe = Some(SbeConfig {
            api_key: ApiKey::parse("alloc-test-key", "test").unwrap(),
            depth20: true,
            json_ws: parse_ws_base(&sim.ws_base()).unwrap(),
        });
    }

    cfg.streams = vec![StreamKind::Depth, StreamKind::Trade, StreamKind::AggTrade, StreamKind::BookTicker];
    let events = std::sync::Arc::new(AtomicU64::new(0));
    let ev = events.clone();
    let t = std::thread::spawn(move || {
        let pcfg = PipelineConfig { output: OutputMode::TobJson, venue, ..PipelineConfig::default() };
        let mut p = Pipeline::new(pcfg, &["BTCUSDT"]);
        let mut out = std::io::sink();
        util::alloc::count_this_thread(true);
        let r = live::run(&cfg, &mut p, &mut out, tickfeed::notice::NoticeLog::stderr(true), &STOP);
        util::alloc::count_this_thread(false);
        ev.store(p.stats().events, Ordering::SeqCst);
        r.unwrap()
    });
    util::wait_until("snapshot", Duration::from_secs(10), || sim.counters().depth_requests >= 1);
    // Warm-up: the snapshot applied, buffers grown to their working size.
    std::thread::sleep(Duration::from_millis(700));
    let id = || sim.last_update_id("BTCUSDT").unwrap();
    let sent = || sim.counters().messages_sent;
    let (a, f_a, id_a, sent_a) = (util::alloc::all_allocations(), util::alloc::all_frees(), id(), sent());
    std::thread::sleep(Duration::from_secs(1));
    let (b, f_b, id_b, sent_b) = (util::alloc::all_allocations(), util::alloc::all_frees(), id(), sent());
    eprintln!("measured second: {} messages, {} update ids", sent_b - sent_a, id_b - id_a);
    STOP.store(true, Ordering::SeqCst);
    let report = t.join().unwrap();
    let conns = if venue == Venue::UsdM || sbe { 2 } else { 1 };
    assert_eq!(report.connections, conns, "a reconnect during the measurement");
    assert!(events.load(Ordering::SeqCst) > 200);
    (b - a, f_b - f_a, id_b - id_a)
}

#[test]
fn steady_state_allocates_nothing_plain_then_tls() {
    // The counts are summed over every counted thread: one measurement at a time.
    let _one = util::serial();
    let sim = util::sim(false, &["btcusdt"]);
    let (allocs, frees, ids) = measure(&sim, TlsSetup::new(None).unwrap(), false);
    assert!(ids > 50, "the market hardly moved ({ids} ids)");
    assert_eq!((allocs, frees), (0, 0), "plain: allocations and frees in one second of steady traffic");
    drop(sim);

    let sim = util::sim(true, &["btcusdt"]);
    let dir = util::temp_dir("alloc-tls");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let (allocs, frees, ids) = measure(&sim, TlsSetup::new(Some(&ca)).unwrap(), false);
    eprintln!("TLS: {allocs} allocations and {frees} frees in one second of steady traffic ({ids} update ids)");
    assert!(ids > 50, "TLS: the market hardly moved ({ids} ids)");
    assert_eq!((allocs, frees), (0, 0), "TLS: allocations and frees in one second of steady traffic");
}

/// The futures path (futures depth decoded with `pu`, the futures procedure, bookTicker with `E`
/// and `T`, trades with `X`, aggTrade on its /market connection) is held to the same zero.
#[test]
fn futures_steady_state_allocates_nothing() {
    let _one = util::serial();
    let sim = util::sim_usdm(false, &["btcusdt"]);
    let (allocs, frees, ids) = measure_on(&sim, TlsSetup::new(None).unwrap(), Venue::UsdM, false);
    assert!(ids > 50, "the market hardly moved ({ids} ids)");
    assert_eq!((allocs, frees), (0, 0), "usdm: allocations and frees in one second of steady traffic");
}

/// `--feed sbe`: binary frames through the SBE decoder, the bestBidAsk and depth20 audits and the
/// JSON aggTrade connection alongside, held to the same zero.
#[test]
fn steady_state_allocates_nothing_over_sbe() {
    let _one = util::serial();
    let sim = tickfeed_sim::Sim::start(tickfeed_sim::SimConfig {
        tls: false,
        pacing: tickfeed_sim::Pacing::Speed(10.0),
        levels_per_side: 300,
        source: tickfeed_sim::MarketSource::Synthetic { symbols: vec!["btcusdt".into()], seed: 11 },
        sbe_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..tickfeed_sim::SimConfig::default()
    })
    .unwrap();
    let (allocs, frees, ids) = measure(&sim, TlsSetup::new(None).unwrap(), true);
    assert!(ids > 50, "the market hardly moved ({ids} ids)");
    assert_eq!((allocs, frees), (0, 0), "SBE: allocations and frees in one second of steady traffic");
}
