//! The simulator as an oracle: a client following Binance's official local-book procedure (buffer,
//! snapshot over REST, drop `u <= lastUpdateId`, bridge, resync on gaps) ends with a book exactly
//! equal to the simulator's reference book at the client's final update id.

mod util;

use std::time::Duration;

use serde_json::Value;
use tickfeed_sim::{MarketSource, Pacing, Sim, SimConfig};
use util::{next_text, parse_diff, ws, LocalBook};

fn converge(sim: &tickfeed_sim::SimHandle, symbol: &str, diffs: u64) -> LocalBook {
    let lower = symbol.to_ascii_lowercase();
    let mut w = ws(sim, &format!("/stream?streams={lower}@depth@100ms"));
    let mut book = LocalBook::default();
    while book.applied < diffs {
        let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(10))).unwrap();
        book.on_diff(sim, symbol, parse_diff(&v["data"]));
    }
    book
}

#[test]
fn synthetic_market_converges_exactly() {
    let sim = Sim::start(SimConfig { tls: false, pacing: Pacing::Rate(20_000), ..SimConfig::default() }).unwrap();
    let book = converge(&sim, "BTCUSDT", 300);
    assert!(book.synced);
    let reference = sim.reference_book("BTCUSDT", book.id).expect("reference at the client's id");
    assert!(reference.bids.len() > 2000 && reference.asks.len() > 2000, "thousands of levels");
    assert_eq!(book.to_book("BTCUSDT"), reference);
    assert_eq!(book.to_book("BTCUSDT").to_dump_json(), reference.to_dump_json());
}

/// bookTicker's `u` is the id of the book state it shows: whenever the client's book reaches a
/// ticker's `u`, its best bid/ask (price and qty) equal the ticker's exactly.
#[test]
fn book_tickers_match_the_book_at_their_update_id() {
    let sim = Sim::start(SimConfig {
        tls: false,
        levels_per_side: 800,
        pacing: Pacing::Rate(20_000),
        ..SimConfig::default()
    })
    .unwrap();
    let mut w = ws(&sim, "/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker");
    let mut book = LocalBook::default();
    let mut tickers: std::collections::HashMap<u64, [String; 4]> = Default::default();
    let (mut checks, mut tickers_seen) = (0, 0);
    while book.applied < 300 {
        let v: Value = serde_json::from_str(&next_text(&mut w, Duration::from_secs(10))).unwrap();
        let d = &v["data"];
        if v["stream"] == "btcusdt@bookTicker" {
            tickers_seen += 1;
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            tickers.insert(d["u"].as_u64().unwrap(), [s("b"), s("B"), s("a"), s("A")]);
            continue;
        }
        book.on_diff(&sim, "BTCUSDT", parse_diff(d));
        if let Some(t) = tickers.remove(&book.id).filter(|_| book.synced) {
            let b = book.to_book("BTCUSDT");
            let f = tickfeed_sim::decimal::format_units;
            let top = [f(b.bids[0].price), f(b.bids[0].qty), f(b.asks[0].price), f(b.asks[0].qty)];
            assert_eq!(top, t, "bookTicker u={} vs the book at that id", book.id);
            checks += 1;
        }
        tickers.retain(|&u, _| u > book.id);
    }
    assert!(tickers_seen > 1000, "{tickers_seen}");
    assert!(checks > 20, "only {checks} tickers landed on a diff boundary");
}

#[test]
fn two_symbols_converge_over_tls() {
    let sim = Sim::start(SimConfig {
        source: MarketSource::Synthetic { symbols: vec!["btcusdt".into(), "ethusdt".into()], seed: 9 },
        levels_per_side: 800,
        pacing: Pacing::Rate(20_000),
        ..SimConfig::default()
    })
    .unwrap();
    for sym in ["ETHUSDT", "BTCUSDT"] {
        let book = converge(&sim, sym, 100);
        assert_eq!(book.to_book(sym), sim.reference_book(sym, book.id).unwrap());
    }
}
