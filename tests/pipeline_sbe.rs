//! SBE binary frames through the pipeline (`Pipeline::on_binary_with`): the same sequencing,
//! duplicates, sync engine, trade ids and audits as JSON. Frames are written by the simulator's
//! encoder (`tickfeed_sim::sbe`), which shares no code with the handler's decoder.

use tickfeed::binance::StreamKind;
use tickfeed::book::fixed::TickSize;
use tickfeed::book::SnapshotOutcome;
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{Admit, FrameOutcome, Ids, Pipeline, PipelineConfig, Position};
use tickfeed_sim::sbe as enc;
use tickfeed_sim::Level;

const P: i64 = 100_000_000; // 1.0 in units
const T0: i64 = 1_723_161_256_000_000_000;
const E_US: i64 = 1_723_161_255_999_000;

fn cfg(mode: OutputMode) -> PipelineConfig {
    PipelineConfig { output: mode, ..PipelineConfig::default() }
}

fn lv(price: i64, qty: i64) -> Level {
    Level { price, qty }
}

fn diff(first: u64, last: u64, bids: &[Level], asks: &[Level]) -> Vec<u8> {
    let m = enc::DepthDiff {
        event_time_us: E_US,
        first_update_id: first,
        last_update_id: last,
        symbol: "BTCUSDT",
        bids,
        asks,
    };
    let mut out = Vec::new();
    enc::encode_depth_diff(&m, enc::Scale::Coarsest, &mut out).unwrap();
    out
}

fn bba(id: u64, bid: Level, ask: Level) -> Vec<u8> {
    let m = enc::BestBidAsk { event_time_us: E_US, book_update_id: id, symbol: "BTCUSDT", bid, ask };
    let mut out = Vec::new();
    enc::encode_best_bid_ask(&m, enc::Scale::Coarsest, &mut out).unwrap();
    out
}

fn trades(ids: &[u64]) -> Vec<u8> {
    let t: Vec<enc::TradeEntry> =
        ids.iter().map(|&id| enc::TradeEntry { id, price: 100 * P, qty: P, buyer_is_maker: id % 2 == 0 }).collect();
    let m = enc::Trades { event_time_us: E_US, transact_time_us: E_US - 1000, symbol: "BTCUSDT", trades: &t };
    let mut out = Vec::new();
    enc::encode_trades(&m, enc::Scale::Coarsest, &mut out).unwrap();
    out
}

fn depth20(id: u64, bids: &[Level], asks: &[Level]) -> Vec<u8> {
    let m = enc::DepthSnapshot { event_time_us: E_US, book_update_id: id, symbol: "BTCUSDT", bids, asks };
    let mut out = Vec::new();
    enc::encode_depth_snapshot(&m, enc::Scale::Coarsest, &mut out).unwrap();
    out
}

const SNAP: &[u8] =
    br#"{"lastUpdateId":11,"bids":[["99.00000000","2.00000000"]],"asks":[["101.00000000","3.00000000"]]}"#;

/// A pipeline (tick 0.01) whose BTCUSDT book is synced at id 12 from SBE diffs (bid 100 x 1, 99 x 2; ask 101 x 3).
fn synced(mode: OutputMode) -> Pipeline {
    let mut p = Pipeline::new(cfg(mode), &["BTCUSDT"]);
    p.set_tick(0, TickSize::new(1_000_000).unwrap());
    let o = p.on_binary(T0, &diff(10, 12, &[lv(100 * P, P)], &[]));
    assert_eq!(o, FrameOutcome::Market { symbol: 0, kind: StreamKind::Depth, ids: Ids { first: 10, last: 12 } });
    assert_eq!(p.poll_snapshot_request(), Some(0));
    assert_eq!(p.on_snapshot(0, T0, SNAP), Ok(SnapshotOutcome::Synced { dropped: 0, applied: 1 }));
    assert_eq!(p.symbols()[0].book().last_update_id(), 12);
    p
}

#[test]
fn sbe_diffs_sync_the_book_and_equal_the_json_path() {
    let mut p = synced(OutputMode::TobJson);
    p.on_binary(T0, &diff(13, 14, &[lv(99 * P + P / 2, P)], &[lv(100 * P + P / 2, P)]));
    let mut j = Pipeline::new(cfg(OutputMode::TobJson), &["BTCUSDT"]);
    j.set_tick(0, TickSize::new(1_000_000).unwrap());
    let d = |u0: u64, u1: u64, b: &str, a: &str| {
        format!(
            r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161255999,"s":"BTCUSDT","U":{u0},"u":{u1},"b":[{b}],"a":[{a}]}}}}"#
        )
    };
    j.on_frame(T0, d(10, 12, r#"["100.00","1.00"]"#, "").as_bytes());
    assert_eq!(j.poll_snapshot_request(), Some(0));
    j.on_snapshot(0, T0, SNAP).unwrap();
    j.on_frame(T0, d(13, 14, r#"["99.50","1.00"]"#, r#"["100.50","1.00"]"#).as_bytes());
    assert_eq!(p.dump_book_json(0), j.dump_book_json(0));
    assert!(p.dump_book_json(0).unwrap().contains("\"lastUpdateId\":14"));
    assert_eq!((p.stats().depth_updates, p.stats().events, p.stats().sbe_frames), (2, 2, 2));
    // The same lines out (the receive time is the same; latency is from µs E here, ms E there).
    assert_eq!(p.output().buffer(), j.output().buffer());
    // SBE times are µs: 1 ms of latency.
    assert_eq!(p.stats().latency_us.max(), 1000);
}

#[test]
fn a_gap_over_sbe_resyncs() {
    let mut p = synced(OutputMode::None);
    p.on_binary(T0, &diff(14, 15, &[lv(100 * P, 3 * P)], &[]));
    let s = &p.symbols()[0];
    assert!(!s.book().is_synced());
    assert_eq!(s.book().counters().gaps, 1);
    assert_eq!(p.poll_snapshot_request(), Some(0));
}

#[test]
fn best_bid_ask_feeds_the_audit_and_culled_ids_are_no_gap() {
    let mut p = synced(OutputMode::None);
    // At id 12 the book is bid 100 x 1, ask 101 x 3.
    assert!(matches!(p.on_binary(T0, &bba(12, lv(100 * P, P), lv(101 * P, 3 * P))), FrameOutcome::Market { .. }));
    // Ids 13..=19 culled: the next is 20, ahead of the book; it waits for the book and matches.
    p.on_binary(T0, &bba(20, lv(100 * P, P), lv(101 * P, 3 * P)));
    p.on_binary(T0, &diff(13, 20, &[lv(98 * P, P)], &[]));
    let s = &p.symbols()[0];
    assert_eq!((s.audit().counters().checks, s.audit().counters().mismatches), (2, 0));
    assert_eq!(p.stats().book_tickers, 2);
    assert_eq!(p.stats().trade_id_gaps, 0);
    // A repeat (a second connection) is a duplicate.
    assert!(matches!(p.on_binary(T0, &bba(20, lv(100 * P, P), lv(101 * P, 3 * P))), FrameOutcome::Duplicate { .. }));
    // A wrong top at the book's id: mismatch, the book is distrusted.
    p.on_binary(T0, &bba(21, lv(100 * P, P), lv(101 * P, 3 * P)));
    p.on_binary(T0, &diff(21, 21, &[], &[lv(101 * P, 4 * P)]));
    let s = &p.symbols()[0];
    assert_eq!(s.audit().counters().mismatches, 1);
    assert!(!s.book().is_synced());
    assert_eq!(s.book().counters().audit_resyncs, 1);
}

#[test]
fn a_trades_event_carries_several_trades_each_in_the_sequence() {
    let mut p = Pipeline::new(cfg(OutputMode::Ndjson), &["BTCUSDT"]);
    assert_eq!(
        p.on_binary(T0, &trades(&[5, 6, 7])),
        FrameOutcome::Market { symbol: 0, kind: StreamKind::Trade, ids: Ids { first: 5, last: 7 } }
    );
    assert_eq!((p.stats().trades, p.stats().trade_id_gaps), (3, 0));
    // A jump inside the event and one from the last processed id: two gaps.
    p.on_binary(T0, &trades(&[9, 11]));
    assert_eq!((p.stats().trades, p.stats().trade_id_gaps), (5, 2));
    // A copy is a duplicate; an overlapping one counts only its new trades.
    assert!(matches!(p.on_binary(T0, &trades(&[9, 11])), FrameOutcome::Duplicate { .. }));
    p.on_binary(T0, &trades(&[11, 12]));
    assert_eq!((p.stats().trades, p.stats().trade_id_gaps, p.stats().duplicates), (6, 2, 1));
    assert_eq!(p.symbols()[0].sequence(StreamKind::Trade).unwrap().last(), Some(12));
    // No trade, or ids out of order: bad messages, nothing counted.
    assert!(matches!(p.on_binary(T0, &trades(&[])), FrameOutcome::Bad(_)));
    assert!(matches!(p.on_binary(T0, &trades(&[20, 19])), FrameOutcome::Bad(_)));
    assert_eq!((p.stats().trades, p.stats().bad_messages), (6, 2));
    // ndjson: one JSON trade line per trade.
    let text = String::from_utf8(p.output().buffer().to_vec()).unwrap();
    assert_eq!(text.lines().count(), 6, "{text}");
    assert_eq!(text.matches("\"t\":11,").count(), 1, "an overlapping copy writes only its new trades: {text}");
    let first = text.lines().next().unwrap();
    assert!(first.contains("\"latency_ms\":1.000,\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":1723161255999000,\"s\":\"BTCUSDT\",\"t\":5,\"p\":\"100.00000000\",\"q\":\"1.00000000\",\"T\":1723161255998000,\"m\":false,\"M\":true}}"), "{first}");
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["data"]["e"], "trade");
    }
}

#[test]
fn admission_sees_sbe_events_and_can_hold_them() {
    let mut p = Pipeline::new(cfg(OutputMode::None), &["BTCUSDT"]);
    let mut seen = Vec::new();
    let mut hold_ahead = |ev: &tickfeed::pipeline::Sequenced| {
        seen.push((ev.kind, ev.ids, ev.position));
        if ev.position == Position::Ahead {
            Admit::Hold
        } else {
            Admit::Process
        }
    };
    p.on_binary_with(T0, &trades(&[5, 6]), &mut hold_ahead);
    assert!(matches!(p.on_binary_with(T0, &trades(&[8]), &mut hold_ahead), FrameOutcome::Held { .. }));
    p.on_binary_with(T0, &trades(&[7]), &mut hold_ahead);
    assert_eq!(
        seen,
        [
            (StreamKind::Trade, Ids { first: 5, last: 6 }, Position::Next),
            (StreamKind::Trade, Ids::one(8), Position::Ahead),
            (StreamKind::Trade, Ids::one(7), Position::Next),
        ]
    );
    assert_eq!((p.stats().trades, p.stats().events), (3, 2));
}

#[test]
fn depth20_audits_the_top_twenty_levels() {
    let mut p = synced(OutputMode::None);
    // Right: the book at 12 is bids 100 x 1, 99 x 2; asks 101 x 3. Sent before the diff that
    // brings the book to its id, it waits for it.
    let o = p.on_binary(T0, &depth20(13, &[lv(100 * P, P), lv(99 * P, 2 * P), lv(98 * P, P)], &[lv(101 * P, 3 * P)]));
    assert_eq!(o, FrameOutcome::Depth20 { symbol: 0, id: 13, duplicate: false });
    assert_eq!(p.stats().depth20_checks, 0);
    p.on_binary(T0, &diff(13, 13, &[lv(98 * P, P)], &[]));
    assert_eq!((p.stats().depth20, p.stats().depth20_checks, p.stats().depth20_mismatches), (1, 1, 0));
    assert!(matches!(p.on_binary(T0, &depth20(13, &[], &[])), FrameOutcome::Depth20 { duplicate: true, .. }));
    // One the book has passed is dropped unchecked.
    p.on_binary(T0, &diff(14, 15, &[lv(97 * P, P)], &[]));
    p.on_binary(T0, &depth20(14, &[lv(1, 1)], &[]));
    assert_eq!((p.stats().depth20, p.stats().depth20_checks), (2, 1));
    // A wrong one at the book's id.
    p.on_binary(T0, &depth20(15, &[lv(100 * P, P)], &[lv(101 * P, 3 * P)]));
    assert_eq!((p.stats().depth20_checks, p.stats().depth20_mismatches), (2, 1));
    // The wrong one distrusted the book.
    let s = &p.symbols()[0];
    assert!(!s.book().is_synced());
    assert_eq!(s.book().counters().audit_resyncs, 1);
}

#[test]
fn depth20_missing_a_level_or_with_a_wrong_quantity_is_a_mismatch() {
    for (bids, asks) in [
        // The book's 99 x 2 is missing: a side under 20 levels must be the whole side.
        (vec![lv(100 * P, P)], vec![lv(101 * P, 3 * P)]),
        (vec![lv(100 * P, P), lv(99 * P, 3 * P)], vec![lv(101 * P, 3 * P)]),
        (vec![lv(100 * P, P), lv(99 * P, 2 * P)], vec![]),
        (vec![lv(99 * P, 2 * P)], vec![lv(101 * P, 3 * P)]),
    ] {
        let mut p = synced(OutputMode::None);
        p.on_binary(T0, &depth20(12, &bids, &asks));
        assert_eq!((p.stats().depth20_checks, p.stats().depth20_mismatches), (1, 1), "{bids:?} {asks:?}");
        assert!(!p.symbols()[0].book().is_synced());
    }
    let mut p = synced(OutputMode::None);
    p.on_binary(T0, &depth20(12, &[lv(100 * P, P), lv(99 * P, 2 * P)], &[lv(101 * P, 3 * P)]));
    assert_eq!((p.stats().depth20_checks, p.stats().depth20_mismatches), (1, 0));
    assert!(p.symbols()[0].book().is_synced());
}

#[test]
fn bad_binary_frames_are_counted_not_fatal() {
    let mut p = synced(OutputMode::None);
    let good = diff(13, 13, &[lv(98 * P, P)], &[]);
    let mut other_symbol = Vec::new();
    enc::encode_depth_diff(
        &enc::DepthDiff {
            event_time_us: E_US,
            first_update_id: 13,
            last_update_id: 13,
            symbol: "ETHUSDT",
            bids: &[],
            asks: &[],
        },
        enc::Scale::Coarsest,
        &mut other_symbol,
    )
    .unwrap();
    let bad: Vec<Vec<u8>> =
        vec![vec![], good[..good.len() - 1].to_vec(), vec![0xff; 40], b"{\"e\":\"x\"}".to_vec(), other_symbol];
    for f in &bad {
        assert!(matches!(p.on_binary(T0, f), FrameOutcome::Bad(_)), "{f:?}");
    }
    assert_eq!(p.stats().bad_messages, bad.len() as u64);
    assert!(p.symbols()[0].book().is_synced(), "bad frames leave the book alone");
    assert!(matches!(p.on_binary(T0, &good), FrameOutcome::Market { .. }));
}

#[test]
fn ndjson_renders_each_sbe_event_as_json() {
    let mut p = synced(OutputMode::Ndjson);
    p.output().discard();
    p.on_binary(T0, &diff(13, 13, &[lv(98 * P, P)], &[lv(102 * P, 0)]));
    p.on_binary(T0, &bba(13, lv(100 * P, P), lv(101 * P, 3 * P)));
    p.on_binary(T0, &depth20(13, &[lv(100 * P, P)], &[lv(101 * P, 3 * P)]));
    let text = String::from_utf8(p.output().buffer().to_vec()).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0]["stream"], "btcusdt@depth");
    assert_eq!(lines[0]["data"]["U"], 13);
    assert_eq!(lines[0]["data"]["b"][0][0], "98.00000000");
    assert_eq!(lines[0]["data"]["a"][0][1], "0.00000000");
    assert_eq!(lines[1]["stream"], "btcusdt@bestBidAsk");
    assert_eq!(lines[1]["data"]["u"], 13);
    assert_eq!(lines[1]["data"]["A"], "3.00000000");
    assert_eq!(lines[1]["latency_ms"], 1.0);
    assert_eq!(lines[2]["stream"], "btcusdt@depth20");
    assert_eq!(lines[2]["data"]["lastUpdateId"], 13);
}

#[test]
fn depth20_is_compared_only_where_the_snapshot_made_the_book_known() {
    // The snapshot's deepest bid is 99 and deepest ask 101: below 99 and above 101 the book knows
    // only what diffs touched, so depth20's levels there are not held against it.
    let mut p = synced(OutputMode::None);
    p.on_binary(
        T0,
        &depth20(12, &[lv(100 * P, P), lv(99 * P, 2 * P), lv(98 * P, 5 * P)], &[lv(101 * P, 3 * P), lv(102 * P, P)]),
    );
    assert_eq!((p.stats().depth20_checks, p.stats().depth20_mismatches), (1, 0));
    assert!(p.symbols()[0].book().is_synced());
    // Inside the band a wrong quantity still is a mismatch.
    let mut p = synced(OutputMode::None);
    p.on_binary(T0, &depth20(12, &[lv(100 * P, P), lv(99 * P, 2 * P + 1)], &[lv(101 * P, 3 * P), lv(102 * P, P)]));
    assert_eq!((p.stats().depth20_checks, p.stats().depth20_mismatches), (1, 1));
}

#[test]
fn extreme_event_times_are_counted_not_a_panic() {
    // Found by tests/pipeline_fuzz.rs: an SBE eventTime is any int64.
    let mut p = Pipeline::new(cfg(OutputMode::Ndjson), &["BTCUSDT"]);
    for (i, e) in [i64::MIN, i64::MAX, -1, 0].into_iter().enumerate() {
        let t = [enc::TradeEntry { id: 10 + i as u64, price: P, qty: P, buyer_is_maker: false }];
        let m = enc::Trades { event_time_us: e, transact_time_us: e, symbol: "BTCUSDT", trades: &t };
        let mut f = Vec::new();
        enc::encode_trades(&m, enc::Scale::Coarsest, &mut f).unwrap();
        assert!(matches!(p.on_binary(T0, &f), FrameOutcome::Market { .. }));
    }
    assert_eq!(p.stats().trades, 4);
    assert_eq!(p.stats().negative_latency, 1, "i64::MAX is far in the future");
    for l in String::from_utf8(p.output().buffer().to_vec()).unwrap().lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
}
