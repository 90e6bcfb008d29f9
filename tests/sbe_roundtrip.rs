//! Issue 12's "property test encoder <-> decoder": random depth diffs, depth20 snapshots, trades
//! events (several trades each) and best bid/asks, encoded by the simulator's SBE encoder
//! (`tickfeed_sim::sbe`, written from the schema on its own) and decoded by the handler's
//! (`tickfeed::binance::sbe`), give back exactly the values that went in: ids, times, symbols,
//! every level and trade in order, prices and quantities in 1e-8 units, under both of the
//! encoder's exponent rules (-8 always, or the coarsest exact exponent of each message).
//!
//! The two sides share no code, so agreement here means both read the schema the same way. This
//! is not a test of either against Binance's bytes: the unit tests of each do that by hand.

use proptest::prelude::*;
use tickfeed::binance::sbe as dec;
use tickfeed::binance::{LevelBuf, RawLevel};
use tickfeed_sim::sbe as enc;
use tickfeed_sim::Level;

fn scale() -> impl Strategy<Value = enc::Scale> {
    prop_oneof![Just(enc::Scale::Units), Just(enc::Scale::Coarsest)]
}

/// A non-negative value in 1e-8 units: often a BTC-like price or quantity, sometimes anything up
/// to i64::MAX, sometimes 0.
fn units() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => (0u32..=8, 0i64..10_000_000_000).prop_map(|(k, m)| m * 10i64.pow(k)),
        2 => 1i64..=10_000_000_000_000,
        1 => 0i64..=i64::MAX,
        1 => Just(0i64),
    ]
}

/// Values of one family (a message's prices, or its quantities): half the time all multiples of
/// one 10^k, k in 0..=8, as a symbol's tick or lot makes them, so the coarsest exact exponent is
/// above -8 and the decoder's scaling is what gets checked; otherwise any [`units`].
fn family() -> impl Strategy<Value = BoxedStrategy<i64>> {
    prop_oneof![
        (0u32..=8).prop_map(|k| (0i64..10_000_000_000).prop_map(move |m| m * 10i64.pow(k)).boxed()),
        Just(units().boxed()),
    ]
}

/// Any id the wire can carry (int64, non-negative).
fn id() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..=i64::MAX as u64, 1_000_000_000u64..100_000_000_000]
}

/// Uppercase ASCII symbols as Binance has them, the empty one, the longest a varString8 holds, and
/// non-ASCII UTF-8 (the SBE page says symbols may contain it).
fn symbol() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Z0-9]{1,20}",
        1 => Just(String::new()),
        1 => Just("Z".repeat(255)),
        1 => "[A-Zé币]{1,12}",
    ]
}

/// Bids and asks whose prices share one [`family`] and quantities another.
fn book_sides(max: usize) -> impl Strategy<Value = (Vec<Level>, Vec<Level>)> {
    (family(), family()).prop_flat_map(move |(p, q)| {
        let side = prop::collection::vec((p, q).prop_map(|(price, qty)| Level { price, qty }), 0..max);
        (side.clone(), side)
    })
}

fn levels(max: usize) -> impl Strategy<Value = Vec<Level>> {
    book_sides(max).prop_map(|(bids, _)| bids)
}

fn raw(levels: &[Level]) -> Vec<RawLevel> {
    levels.iter().map(|l| RawLevel { price: l.price, qty: l.qty }).collect()
}

fn trade() -> impl Strategy<Value = enc::TradeEntry> {
    (id(), units(), units(), any::<bool>()).prop_map(|(id, price, qty, buyer_is_maker)| enc::TradeEntry {
        id,
        price,
        qty,
        buyer_is_maker,
    })
}

/// Trades whose prices share one [`family`] and quantities another.
fn trades(max: usize) -> impl Strategy<Value = Vec<enc::TradeEntry>> {
    (family(), family()).prop_flat_map(move |(p, q)| {
        prop::collection::vec(
            (id(), p, q, any::<bool>()).prop_map(|(id, price, qty, buyer_is_maker)| enc::TradeEntry {
                id,
                price,
                qty,
                buyer_is_maker,
            }),
            0..max,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn depth_diff_round_trips(
        (t, first, last, sym) in (any::<i64>(), id(), id(), symbol()),
        (bids, asks) in book_sides(60),
        scale in scale(),
    ) {
        let m = enc::DepthDiff { event_time_us: t, first_update_id: first, last_update_id: last, symbol: &sym, bids: &bids, asks: &asks };
        let mut frame = vec![0xAA; 7];
        enc::encode_depth_diff(&m, scale, &mut frame).unwrap();
        let mut buf = LevelBuf::default();
        let h = dec::decode_depth_diff(&frame, &mut buf).unwrap();
        prop_assert_eq!(h.event_time, t);
        prop_assert_eq!(h.first_id, first);
        prop_assert_eq!(h.final_id, last);
        prop_assert_eq!(h.symbol, sym.as_str());
        prop_assert_eq!(&buf.bids, &raw(&bids));
        prop_assert_eq!(&buf.asks, &raw(&asks));
        // The dispatching decoder reads the same message.
        let mut bufs = dec::SbeBufs::default();
        prop_assert_eq!(dec::decode(&frame, &mut bufs).unwrap(), dec::SbeEvent::DepthDiff(h));
    }

    #[test]
    fn depth20_snapshot_round_trips(
        (t, book_id, sym) in (any::<i64>(), id(), symbol()),
        (bids, asks) in book_sides(21),
        scale in scale(),
    ) {
        let m = enc::DepthSnapshot { event_time_us: t, book_update_id: book_id, symbol: &sym, bids: &bids, asks: &asks };
        let mut frame = Vec::new();
        enc::encode_depth_snapshot(&m, scale, &mut frame).unwrap();
        let mut buf = LevelBuf::default();
        let s = dec::decode_depth_snapshot(&frame, &mut buf).unwrap();
        prop_assert_eq!(s, dec::DepthSnapshot { event_time: t, book_update_id: book_id, symbol: &sym });
        prop_assert_eq!(&buf.bids, &raw(&bids));
        prop_assert_eq!(&buf.asks, &raw(&asks));
    }

    #[test]
    fn trades_round_trip(
        (t, tt, sym) in (any::<i64>(), any::<i64>(), symbol()),
        trades in trades(12),
        scale in scale(),
    ) {
        let m = enc::Trades { event_time_us: t, transact_time_us: tt, symbol: &sym, trades: &trades };
        let mut frame = Vec::new();
        enc::encode_trades(&m, scale, &mut frame).unwrap();
        let mut out = Vec::new();
        let h = dec::decode_trades(&frame, &mut out).unwrap();
        prop_assert_eq!(h, dec::TradesHeader { event_time: t, transact_time: tt, symbol: &sym });
        let want: Vec<dec::TradeEntry> = trades
            .iter()
            .map(|e| dec::TradeEntry { trade_id: e.id, price: e.price, qty: e.qty, buyer_is_maker: e.buyer_is_maker })
            .collect();
        prop_assert_eq!(out, want);
    }

    #[test]
    fn best_bid_ask_round_trips(
        (t, book_id, sym) in (any::<i64>(), id(), symbol()),
        (bp, bq, ap, aq) in (family(), family()).prop_flat_map(|(p, q)| (p.clone(), q.clone(), p, q)),
        scale in scale(),
    ) {
        let m = enc::BestBidAsk {
            event_time_us: t,
            book_update_id: book_id,
            symbol: &sym,
            bid: Level { price: bp, qty: bq },
            ask: Level { price: ap, qty: aq },
        };
        let mut frame = Vec::new();
        enc::encode_best_bid_ask(&m, scale, &mut frame).unwrap();
        let b = dec::decode_best_bid_ask(&frame).unwrap();
        prop_assert_eq!(b.event_time, t);
        prop_assert_eq!(b.ticker.update_id, book_id);
        prop_assert_eq!(b.ticker.symbol, sym.as_str());
        prop_assert_eq!((b.ticker.bid_price, b.ticker.bid_qty, b.ticker.ask_price, b.ticker.ask_qty), (bp, bq, ap, aq));
    }

    /// One reused buffer through a random sequence of messages of every template: each frame
    /// decodes on its own (nothing of the previous message is left behind).
    #[test]
    fn one_buffer_serves_every_template(
        picks in prop::collection::vec((0u8..4, levels(8), prop::collection::vec(trade(), 1..4), id(), scale()), 1..12),
    ) {
        let mut frame = Vec::new();
        let mut bufs = dec::SbeBufs::default();
        for (kind, lv, trades, book_id, scale) in &picks {
            let msg = match kind {
                0 => enc::Message::DepthDiff(enc::DepthDiff { event_time_us: 1, first_update_id: *book_id, last_update_id: *book_id, symbol: "BTCUSDT", bids: lv, asks: lv }),
                1 => enc::Message::DepthSnapshot(enc::DepthSnapshot { event_time_us: 2, book_update_id: *book_id, symbol: "ETHUSDT", bids: lv, asks: &[] }),
                2 => enc::Message::Trades(enc::Trades { event_time_us: 3, transact_time_us: 2, symbol: "BNBUSDT", trades }),
                _ => enc::Message::BestBidAsk(enc::BestBidAsk { event_time_us: 4, book_update_id: *book_id, symbol: "XRPUSDT", bid: Level { price: 5, qty: 6 }, ask: Level { price: 7, qty: 8 } }),
            };
            enc::encode(&msg, *scale, &mut frame).unwrap();
            match (dec::decode(&frame, &mut bufs).unwrap(), msg) {
                (dec::SbeEvent::DepthDiff(h), enc::Message::DepthDiff(m)) => {
                    prop_assert_eq!(h.final_id, m.last_update_id);
                    prop_assert_eq!(&bufs.levels.bids, &raw(m.bids));
                }
                (dec::SbeEvent::DepthSnapshot(s), enc::Message::DepthSnapshot(m)) => {
                    prop_assert_eq!(s.book_update_id, m.book_update_id);
                    prop_assert_eq!(&bufs.levels.bids, &raw(m.bids));
                    prop_assert!(bufs.levels.asks.is_empty());
                }
                (dec::SbeEvent::Trades(h), enc::Message::Trades(m)) => {
                    prop_assert_eq!(h.symbol, m.symbol);
                    prop_assert_eq!(bufs.trades.len(), m.trades.len());
                }
                (dec::SbeEvent::BestBidAsk(b), enc::Message::BestBidAsk(m)) => {
                    prop_assert_eq!(b.ticker.update_id, m.book_update_id);
                    prop_assert_eq!(b.ticker.ask_qty, 8);
                }
                (got, sent) => prop_assert!(false, "sent {:?}, decoded {:?}", sent, got),
            }
        }
    }
}
