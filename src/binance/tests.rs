//! The decoders against real Binance frames and their damaged variants.

use super::levels::{quoted_units, scan_levels};
use super::*;
use crate::book::fixed::{self, NumError};

const DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}}"#;

fn data_of(frame: &str) -> &[u8] {
    match split_envelope(frame.as_bytes()).unwrap() {
        Envelope::Stream { data, .. } => data,
        other => panic!("not a stream: {other:?}"),
    }
}

#[test]
fn splits_combined_frames_fast_and_slow() {
    let Envelope::Stream { stream, data } = split_envelope(DEPTH.as_bytes()).unwrap() else { panic!() };
    assert_eq!(stream, "btcusdt@depth@100ms");
    assert!(data.starts_with(b"{\"e\":\"depthUpdate\"") && data.ends_with(b"]]}"));
    // Other key order and spacing go through the general parser and give the same answer.
    let swapped = r#" { "data" : {"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"} , "stream" : "x@bookTicker" } "#;
    let Envelope::Stream { stream, data } = split_envelope(swapped.as_bytes()).unwrap() else { panic!() };
    assert_eq!(stream, "x@bookTicker");
    assert_eq!(data, br#"{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"}"#);
    assert_eq!(split_envelope(br#"{"result":null,"id":1}"#), Ok(Envelope::Control(br#"{"result":null,"id":1}"#)));
    assert!(matches!(split_envelope(br#"{"lastUpdateId":1,"bids":[],"asks":[]}"#), Ok(Envelope::Snapshot(_))));
    assert!(matches!(split_envelope(br#"{"e":"serverShutdown","E":1}"#), Ok(Envelope::Event(_))));
    assert_eq!(split_envelope(br#"{"x":1}"#), Err(DecodeError::UnknownShape));
    for bad in ["", "[]", "{", "{\"stream\":\"a\",\"data\":", "not json", "{\"stream\":1,\"data\":{}}"] {
        assert!(split_envelope(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn decodes_depth() {
    let mut b = LevelBuf::default();
    let h = decode_depth(data_of(DEPTH), &mut b).unwrap();
    assert_eq!(
        h,
        DepthHeader { event_time: 1723161255308, symbol: "BTCUSDT", first_id: 50093239203, final_id: 50093239207 }
    );
    assert_eq!(b.bids, vec![RawLevel { price: 5_565_387_000_000, qty: 0 }]);
    assert_eq!(b.asks.len(), 2);
    assert_eq!(b.asks[1], RawLevel { price: 6_184_430_000_000, qty: 40_163_000 });
}

#[test]
fn depth_errors_are_values() {
    let mut b = LevelBuf::default();
    let cases: &[(&str, DecodeError)] = &[
        (
            r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1.2.3","1"]],"a":[]}"#,
            DecodeError::Number(NumError::TwoDots),
        ),
        (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"b":[],"a":[]}"#, DecodeError::MissingField("u")),
        (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"a":[]}"#, DecodeError::MissingField("b")),
        (r#"{"e":"trade","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}"#, DecodeError::WrongEvent),
        (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1"]],"a":[]}"#, DecodeError::Json),
        (r#"{"e":"depthUpdate","E":1,"s":"X","U":-1,"u":2,"b":[],"a":[]}"#, DecodeError::Json),
        (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[[1,2]],"a":[]}"#, DecodeError::Json),
        (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]} trailing"#, DecodeError::Json),
        (
            r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["-1","2"]],"a":[]}"#,
            DecodeError::Number(NumError::Negative),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(decode_depth(input.as_bytes(), &mut b).as_ref().map(|_| ()), Err(want), "{input}");
    }
}

#[test]
fn decodes_trades_tickers_and_others() {
    let t = decode_trade(br#"{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}"#).unwrap();
    assert_eq!(
        (t.trade_id, t.price, t.qty, t.trade_time, t.buyer_is_maker),
        (3735683259, 6_183_763_000_000, 2_000_000, 1723161255342, true)
    );
    let a = decode_agg_trade(br#"{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}"#).unwrap();
    assert_eq!(
        (a.agg_id, a.first_trade_id, a.last_trade_id, a.price, a.qty),
        (12345, 100, 105, 100_000, 10_000_000_000)
    );
    assert_eq!(
        decode_trade(br#"{"e":"aggTrade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1,"m":true}"#).unwrap_err(),
        DecodeError::WrongEvent
    );
    let bt = decode_book_ticker(
        br#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
    )
    .unwrap();
    assert_eq!((bt.update_id, bt.bid_price, bt.ask_qty), (400900217, 2_535_190_000, 4_066_000_000));
    assert_eq!(
        decode_raw_event(br#"{"e":"serverShutdown","E":1770123456789}"#),
        Ok(RawEvent::ServerShutdown { event_time: 1770123456789 })
    );
    let c = decode_control(br#"{"result":null,"id":1}"#).unwrap();
    assert_eq!((c.id.as_deref(), c.error_code), (Some("1"), None));
    let c = decode_control(br#"{"code":2,"msg":"Invalid request: too many parameters"}"#).unwrap();
    assert_eq!(c.error_code, Some(2));
    let nested = br#"{"error":{"code":2,"msg":"Invalid request: too many parameters"},"id":7}"#;
    assert_eq!(split_envelope(nested), Ok(Envelope::Control(nested)));
    let c = decode_control(nested).unwrap();
    assert_eq!(
        (c.error_code, c.error_msg.as_deref(), c.id.as_deref()),
        (Some(2), Some("Invalid request: too many parameters"), Some("7"))
    );
    assert_eq!(decode_control(br#"{"id":1}"#), Err(DecodeError::UnknownShape));
    let mut b = LevelBuf::default();
    assert_eq!(
        decode_snapshot(
            br#"{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}"#,
            &mut b
        ),
        Ok(1027024)
    );
    assert_eq!(b.asks, vec![RawLevel { price: 400_000_200, qty: 1_200_000_000 }]);
}

#[test]
fn level_scanner_matches_general_parser() {
    let cases: &[&str] = &[
        r#"[]"#,
        r#"[["1.00000000","2.00000000"]]"#,
        r#"[["61837.63000000","3.78826000"],["61837.62000000","0.61700000"],["5","0"]]"#,
        r#"[ ["1.0","2.0"] ]"#,
        r#"[["1.0" , "2.0"]]"#,
        r#"[["1.0","2.0","extra"]]"#,
    ];
    for c in cases {
        let framed = format!(r#"{{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":{c},"a":[]}}"#);
        let mut b = LevelBuf::default();
        decode_depth(framed.as_bytes(), &mut b).unwrap_or_else(|e| panic!("{c}: {e}"));
        let general: Vec<(String, String)> = serde_json::from_str::<Vec<Vec<String>>>(c)
            .unwrap()
            .into_iter()
            .map(|v| (v[0].clone(), v[1].clone()))
            .collect();
        let want: Vec<RawLevel> = general
            .iter()
            .map(|(p, q)| RawLevel {
                price: fixed::parse_units_str(p).unwrap(),
                qty: fixed::parse_units_str(q).unwrap(),
            })
            .collect();
        assert_eq!(b.bids, want, "{c}");
    }
    // Escaped digits are never sent by Binance and cannot be borrowed: refused, not misread.
    let esc = r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1\u0030","2"]],"a":[]}"#;
    assert!(decode_depth(esc.as_bytes(), &mut LevelBuf::default()).is_err());
    let mut out = vec![];
    assert_eq!(scan_levels(br#"[["1.0","2.0"]]"#, &mut out), Some(Ok(())));
    assert_eq!(scan_levels(br#"[["1.0","2.0"],]"#, &mut out), None);
    assert_eq!(scan_levels(br#"[["1.0","2.0"]] "#, &mut out), None);
    assert_eq!(scan_levels(br#"[["1..0","2.0"]]"#, &mut out), Some(Err(NumError::TwoDots)));
    assert_eq!(scan_levels(br#"[["92233720368.54775808","2.0"]]"#, &mut out), Some(Err(NumError::Overflow)));
    assert_eq!(scan_levels(br#"[["123456789012.00000000","2.0"]]"#, &mut out), Some(Err(NumError::Overflow)));
    assert_eq!(scan_levels(br#"[["1.0000000x","2.0"]]"#, &mut out), Some(Err(NumError::InvalidChar)));
    for bad in [r#"[["1.0","2.0"],["#, r#"[[""#, r#"[["1.0""#, r#"[["1.0","2.0""#] {
        assert_eq!(scan_levels(bad.as_bytes(), &mut out), None, "{bad}");
    }
}

proptest::proptest! {
    /// The fused quote-and-number scan agrees with finding the quote and parsing the slice.
    #[test]
    fn quoted_units_matches_general_parse(s in "[0-9.a\\\\]{0,24}") {
        let b = format!("{s}\"]");
        let want = b.find(['"', '\\']).filter(|&e| b.as_bytes()[e] == b'"').map(|e| fixed::parse_units(&b.as_bytes()[..e]).map(|v| (v, e)));
        proptest::prop_assert_eq!(quoted_units(b.as_bytes(), 0), want);
    }
}

#[test]
fn invalid_utf8_anywhere_is_an_error_not_undefined_behaviour() {
    let mut b = LevelBuf::default();
    let mut depth =
        br#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1.0","2.0"]],"a":[["3.0","\xff"]]}"#.to_vec();
    // The raw-string above spells \xff literally; put a real invalid byte in its place.
    let at = depth.windows(4).position(|w| w == b"\\xff").unwrap();
    depth.splice(at..at + 4, [0xff]);
    assert_eq!(decode_depth(&depth, &mut b).map(|_| ()), Err(DecodeError::Json));
    let mut snap = br#"{"lastUpdateId":1,"bids":[["1.0","2.0"]],"asks":[["3.0","4.0"]],"x":"?"}"#.to_vec();
    let q = snap.iter().rposition(|&c| c == b'?').unwrap();
    snap[q] = 0xc3; // a lone UTF-8 lead byte
    assert_eq!(decode_snapshot(&snap, &mut b), Err(DecodeError::Json));
    let mut wrapped =
        br#"{"data":{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1","z":"?"},"stream":"x@bookTicker"}"#.to_vec();
    let q = wrapped.iter().rposition(|&c| c == b'?').unwrap();
    wrapped[q] = 0xfe;
    assert_eq!(split_envelope(&wrapped), Err(DecodeError::Json));
}

#[test]
fn stream_names() {
    assert_eq!(
        parse_stream_name("btcusdt@depth@100ms"),
        Some(StreamName { symbol: "btcusdt", kind: StreamKind::Depth })
    );
    assert_eq!(parse_stream_name("btcusdt@depth").map(|s| s.kind), Some(StreamKind::Depth));
    assert_eq!(parse_stream_name("ethusdt@aggTrade").map(|s| s.kind), Some(StreamKind::AggTrade));
    assert_eq!(parse_stream_name("ethusdt@bookTicker").map(|s| s.kind), Some(StreamKind::BookTicker));
    assert_eq!(parse_stream_name("btcusdt@kline_1m"), None);
    assert_eq!(parse_stream_name("@trade"), None);
    assert_eq!(parse_stream_name("!serverShutdown"), None);
}

#[test]
fn exchange_info_filters() {
    let body = br#"{"timezone":"UTC","symbols":[{"symbol":"BTCUSDT","filters":[{"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},{"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"}]}]}"#;
    let f = decode_exchange_info(body, "btcusdt").unwrap();
    assert_eq!(f.tick.unwrap().units(), 1_000_000);
    assert_eq!(f.step, 1_000);
    assert!(decode_exchange_info(body, "ETHUSDT").is_err());
}

/// An exchangeInfo body shaped as Binance sends it (trimmed symbols; a Unicode-escaped name).
const EXCHANGE_INFO: &str = r#"{"timezone":"UTC","serverTime":1,"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000},{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":100},{"rateLimitType":"RAW_REQUESTS","interval":"MINUTE","intervalNum":5,"limit":300000}],"exchangeFilters":[],"symbols":[
 {"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","baseAssetPrecision":8,"quoteAsset":"USDT","orderTypes":["LIMIT"],"filters":[{"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},{"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"},{"filterType":"ICEBERG_PARTS","limit":10}],"permissionSets":[["SPOT","MARGIN"]]},
 {"symbol":"ETHBTC","status":"TRADING","baseAsset":"ETH","quoteAsset":"BTC","filters":[{"filterType":"PRICE_FILTER","minPrice":"0.00001000","maxPrice":"922327.00000000","tickSize":"0.00001000"},{"filterType":"LOT_SIZE","minQty":"0.00010000","maxQty":"100000.00000000","stepSize":"0.00010000"}]},
 {"symbol":"LUNAUSDT","status":"BREAK","baseAsset":"LUNA","quoteAsset":"USDT","filters":[{"filterType":"PRICE_FILTER","minPrice":"0.00010000","maxPrice":"1000.00000000","tickSize":"0.00010000"}]},
 {"symbol":"BADUSDT","status":"TRADING","baseAsset":"BAD","quoteAsset":"USDT","filters":[{"filterType":"PRICE_FILTER","tickSize":"0.0x"}]},
 {"symbol":"\u5e01\u5b89USDT","status":"TRADING","baseAsset":"\u5e01\u5b89","quoteAsset":"USDT","filters":[]}
]}"#;

#[test]
fn exchange_info_for_every_symbol() {
    let info = decode_exchange_info_all(EXCHANGE_INFO.as_bytes()).unwrap();
    assert_eq!(info.request_weight_per_minute, Some(6000), "REQUEST_WEIGHT, not RAW_REQUESTS or ORDERS");
    assert_eq!(info.symbols.len(), 5);
    let btc = info.get("btcusdt").unwrap();
    assert_eq!((btc.status.as_str(), btc.base_asset.as_str(), btc.quote_asset.as_str()), ("TRADING", "BTC", "USDT"));
    let f = btc.filters.clone().unwrap();
    assert_eq!((f.tick.unwrap().units(), f.step), (1_000_000, 1_000));
    assert_eq!(info.get("ETHBTC").unwrap().filters.clone().unwrap().tick.unwrap().units(), 1_000);
    // One symbol's unusable filters do not stop the others.
    assert!(matches!(info.get("BADUSDT").unwrap().filters, Err(DecodeError::Number(_))));
    assert_eq!(info.symbols[4].symbol, "币安USDT");
    assert_eq!(info.symbols[4].filters, Err(DecodeError::MissingField("PRICE_FILTER")));
    // TRADING only, narrowed by quote asset (any case); BREAK is left out.
    let names = |q| info.trading(q).map(|s| s.symbol.as_str()).collect::<Vec<_>>();
    assert_eq!(names(None), ["BTCUSDT", "ETHBTC", "BADUSDT", "币安USDT"]);
    assert_eq!(names(Some("usdt")), ["BTCUSDT", "BADUSDT", "币安USDT"]);
    assert_eq!(names(Some("BTC")), ["ETHBTC"]);
    assert!(names(Some("EUR")).is_empty());
    // The one-symbol decoder reads the same body.
    assert_eq!(decode_exchange_info(EXCHANGE_INFO.as_bytes(), "ethbtc").unwrap().step, 10_000);
}

#[test]
fn exchange_info_rate_limits_and_bad_bodies() {
    let body = |limits: &str| format!(r#"{{"rateLimits":[{limits}],"symbols":[]}}"#);
    let per_minute =
        |limits: &str| decode_exchange_info_all(body(limits).as_bytes()).unwrap().request_weight_per_minute;
    assert_eq!(per_minute(""), None);
    assert_eq!(
        per_minute(r#"{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":5,"limit":30000}"#),
        Some(6000)
    );
    assert_eq!(
        per_minute(
            r#"{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000},{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":1200}"#
        ),
        Some(1200),
        "the tightest"
    );
    assert_eq!(
        decode_exchange_info_all(br#"{"code":-1121,"msg":"Invalid symbol."}"#),
        Err(DecodeError::MissingField("symbols"))
    );
    assert_eq!(decode_exchange_info_all(b"{\"symbols\":[{\"symbol\":"), Err(DecodeError::Json));
    assert_eq!(
        decode_exchange_info_all(br#"{"symbols":[{"status":"TRADING"}]}"#),
        Err(DecodeError::Json),
        "no symbol name"
    );
    let no_filters = decode_exchange_info_all(br#"{"symbols":[{"symbol":"X"}]}"#).unwrap();
    assert_eq!(
        (no_filters.symbols[0].filters.clone(), no_filters.symbols[0].status.as_str()),
        (Err(DecodeError::MissingField("filters")), "")
    );
}

/// `n` arrays nested in each other: `[[[...]]]`.
pub(crate) fn nested(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

/// Runs `f` on a thread with the default 2 MiB test stack, where an unbounded recursion over
/// 80,000 levels overflows (a SIGABRT of the whole test binary, not a failed assertion).
pub(crate) fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap();
}

#[test]
fn nesting_past_the_bound_is_an_error_at_every_decoder() {
    on_small_stack(|| {
        let deep = nested(80_000);
        let d = deep.as_str();
        let mut bufs = LevelBuf::default();
        let too_deep = Err::<(), _>(DecodeError::TooDeep);
        // The envelope's general path (keys in another order, or an unknown one).
        for f in [format!(r#"{{"data":{d},"stream":"btcusdt@trade"}}"#), format!(r#"{{"x":{d},"e":"y"}}"#)] {
            assert_eq!(split_envelope(f.as_bytes()).map(drop), too_deep);
        }
        // Under a known key (the levels) and under an unknown one (skipped).
        let depth = [
            format!(r#"{{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,"b":{d},"a":[]}}"#),
            format!(r#"{{"e":"depthUpdate","x":{d}}}"#),
            deep.clone(),
        ];
        for f in &depth {
            assert_eq!(decode_depth(f.as_bytes(), &mut bufs).map(drop), too_deep);
        }
        let unknown = format!(r#"{{"e":"trade","x":{d}}}"#);
        assert_eq!(decode_trade(unknown.as_bytes()).map(drop), too_deep);
        assert_eq!(decode_agg_trade(unknown.as_bytes()).map(drop), too_deep);
        assert_eq!(decode_book_ticker(unknown.as_bytes()).map(drop), too_deep);
        assert_eq!(decode_raw_event(unknown.as_bytes()).map(drop), too_deep);
        let control = format!(r#"{{"result":{d},"id":1}}"#);
        assert_eq!(decode_control(control.as_bytes()).map(drop), too_deep);
        for body in [format!(r#"{{"lastUpdateId":1,"bids":{d},"asks":[]}}"#), format!(r#"{{"x":{d}}}"#), deep.clone()] {
            assert_eq!(decode_snapshot(body.as_bytes(), &mut bufs).map(drop), too_deep);
        }
        for body in [format!(r#"{{"symbols":[],"x":{d}}}"#), format!(r#"{{"symbols":[{{"symbol":"A","x":{d}}}]}}"#)] {
            assert_eq!(decode_exchange_info_all(body.as_bytes()).map(drop), too_deep);
            assert_eq!(decode_exchange_info(body.as_bytes(), "A").map(drop), too_deep);
        }
        assert_eq!(decode_exchange_info_all(d.as_bytes()).map(drop), too_deep);
        // An error body's code (read from every non-200 REST answer).
        let r = rest::RestResponse {
            status: 400,
            body: format!(r#"{{"code":1,"x":{d}}}"#).into_bytes(),
            retry_after: None,
            used_weight: None,
        };
        assert_eq!(r.api_code(), None);
    });
}

#[test]
fn nesting_up_to_the_bound_is_decoded_and_strings_do_not_count() {
    use super::json::check_depth;
    assert_eq!(check_depth(nested(MAX_DEPTH).as_bytes()), Ok(()));
    assert_eq!(check_depth(nested(MAX_DEPTH + 1).as_bytes()), Err(DecodeError::TooDeep));
    // Siblings do not add up: depth, not count.
    let wide = format!("[{}]", vec![nested(MAX_DEPTH - 1); 100].join(","));
    assert_eq!(check_depth(wide.as_bytes()), Ok(()));
    // Brackets inside strings, escaped quotes included, are text.
    let s = format!(r#"{{"a":"{}\"{}","b":[]}}"#, "[".repeat(100), "{".repeat(100));
    assert_eq!(check_depth(s.as_bytes()), Ok(()));
    let s = format!(r#"["\\",{}]"#, nested(MAX_DEPTH));
    assert_eq!(check_depth(s.as_bytes()), Err(DecodeError::TooDeep));
    // Unterminated input passes the check (the parser refuses it).
    assert_eq!(check_depth(br#"["abc\"#), Ok(()));
    // A value nested a little deeper than Binance's is still skipped as before.
    let f = format!(r#"{{"e":"trade","x":{},"E":1,"s":"X","t":1,"p":"1","q":"1","T":1,"m":true}}"#, nested(8));
    assert!(decode_trade(f.as_bytes()).is_ok());
    assert_eq!(DecodeError::TooDeep.to_string(), "nested deeper than 32 levels");
}

// ---- The fast path agrees with the general decoder ----

/// A depth header and its levels, owned: event time, symbol, `U`, `u`, bids, asks.
type DepthParts = (i64, String, u64, u64, Vec<RawLevel>, Vec<RawLevel>);

/// What a decoder made of one payload, comparable across the two paths.
#[derive(Debug, PartialEq)]
enum Decoded {
    Depth(Result<DepthParts, DecodeError>),
    Other(Result<String, DecodeError>),
}

/// The payload decoded as `kind` by the fast path (`None` when it declined) and by the general one.
fn both_paths(kind: &str, data: &[u8]) -> (Option<Decoded>, Decoded) {
    use super::{fast, market};
    let mut bufs = LevelBuf::default();
    let depth =
        |r: Result<DepthHeader<'_>, DecodeError>, bufs: &LevelBuf| {
            Decoded::Depth(r.map(|h| {
                (h.event_time, h.symbol.to_owned(), h.first_id, h.final_id, bufs.bids.clone(), bufs.asks.clone())
            }))
        };
    let other = |r: Result<String, DecodeError>| Decoded::Other(r);
    match kind {
        "depth" => {
            let fast = fast::depth(data, &mut bufs.bids, &mut bufs.asks).map(|h| depth(Ok(h), &bufs));
            let general = market::decode_depth_general(data, &mut bufs);
            (fast, depth(general, &bufs))
        }
        "trade" => (
            fast::trade(data).map(|t| other(Ok(format!("{t:?}")))),
            other(market::decode_trade_general(data).map(|t| format!("{t:?}"))),
        ),
        "aggTrade" => (
            fast::agg_trade(data).map(|t| other(Ok(format!("{t:?}")))),
            other(market::decode_agg_trade_general(data).map(|t| format!("{t:?}"))),
        ),
        _ => (
            fast::book_ticker(data).map(|t| other(Ok(format!("{t:?}")))),
            other(market::decode_book_ticker_general(data).map(|t| format!("{t:?}"))),
        ),
    }
}

const FAST_SAMPLES: [(&str, &str); 4] = [
    (
        "depth",
        r#"{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}"#,
    ),
    (
        "trade",
        r#"{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}"#,
    ),
    (
        "aggTrade",
        r#"{"e":"aggTrade","E":1723161255343,"s":"BTCUSDT","a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1723161255342,"m":false,"M":true}"#,
    ),
    (
        "bookTicker",
        r#"{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}"#,
    ),
];

#[test]
fn the_fast_path_takes_binance_layout_and_agrees_with_the_general_decoder() {
    for (kind, data) in FAST_SAMPLES {
        let (fast, general) = both_paths(kind, data.as_bytes());
        assert_eq!(fast.as_ref(), Some(&general), "{kind}");
        assert!(!matches!(general, Decoded::Depth(Err(_)) | Decoded::Other(Err(_))), "{kind}: {general:?}");
    }
    // Shapes it leaves to the general decoder (which still reads them).
    let declined = [
        ("bookTicker", r#"{"s":"BTCUSDT","u":1,"b":"1.0","B":"1.0","a":"2.0","A":"1.0"}"#), // key order
        ("bookTicker", r#"{"u":1, "s":"BTCUSDT","b":"1.0","B":"1.0","a":"2.0","A":"1.0"}"#), // space
        ("bookTicker", r#"{"u":1,"s":"BTC\u0055SDT","b":"1.0","B":"1.0","a":"2.0","A":"1.0"}"#), // escape
        ("bookTicker", r#"{"u":01,"s":"BTCUSDT","b":"1.0","B":"1.0","a":"2.0","A":"1.0"}"#), // leading zero
        ("bookTicker", r#"{"u":18446744073709551616,"s":"X","b":"1.0","B":"1.0","a":"2.0","A":"1.0"}"#), // past u64
        ("bookTicker", r#"{"u":1,"s":"X","b":"1.0","B":"1.0","a":"2.0","A":"1.0","x":1}"#), // extra key
        ("trade", r#"{"e":"trade","E":-1,"s":"X","t":1,"p":"1.0","q":"1.0","T":1,"m":true,"M":true}"#),
        ("depth", r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1.0","2.0","3"]],"a":[]}"#),
    ];
    for (kind, data) in declined {
        let (fast, general) = both_paths(kind, data.as_bytes());
        assert_eq!(fast, None, "{data}");
        let _ = general;
    }
}

/// Every payload of the real recordings takes the fast path and decodes as the general decoder
/// decodes it.
#[test]
fn the_fast_path_agrees_with_the_general_decoder_on_every_real_frame() {
    let dir = std::env::var_os("TICKFEED_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/binance"));
    let files = ["btcusdt_20240808.gz", "btcusdt_20240809.gz", "ethusdt_20240808.gz"];
    if !dir.join(files[0]).exists() {
        eprintln!("skipped: the real recordings are not in {} (set TICKFEED_DATA)", dir.display());
        return;
    }
    let mut checked = 0;
    for f in files {
        for (_, json) in crate::capture::load_recording(&dir.join(f)).unwrap() {
            let Ok(Envelope::Stream { stream, data }) = split_envelope(&json) else { continue };
            let kind = stream.rsplit('@').find(|k| ["trade", "aggTrade", "bookTicker"].contains(k)).unwrap_or("depth");
            let (fast, general) = both_paths(kind, data);
            assert_eq!(fast.as_ref(), Some(&general), "{f}: {}", String::from_utf8_lossy(data));
            checked += 1;
        }
    }
    assert_eq!(checked, 133_190, "every stream frame of the three recordings");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

    /// One byte changed, removed or put in anywhere: the fast path declines or agrees.
    #[test]
    fn a_damaged_frame_takes_the_fast_path_only_if_both_agree(
        which in 0usize..4,
        at in proptest::prelude::any::<proptest::sample::Index>(),
        byte in proptest::prelude::any::<u8>(),
        op in 0u8..3,
    ) {
        let (kind, data) = FAST_SAMPLES[which];
        let mut b = data.as_bytes().to_vec();
        let i = at.index(b.len());
        match op {
            0 => b[i] = byte,
            1 => { b.remove(i); }
            _ => b.insert(i, byte),
        }
        let (fast, general) = both_paths(kind, &b);
        if let Some(fast) = fast {
            proptest::prop_assert_eq!(fast, general, "{}", String::from_utf8_lossy(&b));
        }
    }
}

// ---- USDⓈ-M futures depth ----

/// Binance's USDⓈ-M "Diff. Book Depth Streams" response example, compacted (keys in its order).
const FUTURES_DOC: &str = r#"{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}"#;

/// The same layout at futures precision (prices to 0.1, quantities to 0.001), ids past `u32`;
/// illustrative values, not a capture.
const FUTURES_BTC: &str = r#"{"e":"depthUpdate","E":1739202515014,"T":1739202515012,"s":"BTCUSDT","U":6859031517,"u":6859034785,"pu":6859031509,"b":[["64336.00","73.334"],["64335.90","0.000"]],"a":[["64336.10","1.200"]]}"#;

/// A futures depth header and its levels, owned: `E`, `T`, symbol, `U`, `u`, `pu`, bids, asks.
type FuturesParts = (i64, i64, String, u64, u64, u64, Vec<RawLevel>, Vec<RawLevel>);

/// A futures payload decoded by the fast path (`None` when it declined) and by the general one.
fn both_futures_paths(data: &[u8]) -> (Option<Result<FuturesParts, DecodeError>>, Result<FuturesParts, DecodeError>) {
    use super::{fast, market};
    let own = |h: FuturesDepthHeader<'_>, bufs: &LevelBuf| {
        let b = (bufs.bids.clone(), bufs.asks.clone());
        (h.event_time, h.transaction_time, h.symbol.to_owned(), h.first_id, h.final_id, h.prev_final_id, b.0, b.1)
    };
    let mut bufs = LevelBuf::default();
    let fast = fast::futures_depth(data, &mut bufs.bids, &mut bufs.asks).map(|h| Ok(own(h, &bufs)));
    let general = market::decode_futures_depth_general(data, &mut bufs).map(|h| own(h, &bufs));
    (fast, general)
}

#[test]
fn decodes_futures_depth_from_the_doc_example() {
    let mut b = LevelBuf::default();
    let h = decode_futures_depth(FUTURES_DOC.as_bytes(), &mut b).unwrap();
    assert_eq!(
        h,
        FuturesDepthHeader {
            event_time: 123456789,
            transaction_time: 123456788,
            symbol: "BTCUSDT",
            first_id: 157,
            final_id: 160,
            prev_final_id: 149,
        }
    );
    assert_eq!(b.bids, vec![RawLevel { price: 240_000, qty: 1_000_000_000 }]);
    assert_eq!(b.asks, vec![RawLevel { price: 260_000, qty: 10_000_000_000 }]);
    let h = decode_futures_depth(FUTURES_BTC.as_bytes(), &mut b).unwrap();
    assert_eq!((h.first_id, h.final_id, h.prev_final_id), (6859031517, 6859034785, 6859031509));
    assert_eq!(
        b.bids,
        vec![RawLevel { price: 6_433_600_000_000, qty: 7_333_400_000 }, RawLevel { price: 6_433_590_000_000, qty: 0 }]
    );
    assert_eq!(b.asks, vec![RawLevel { price: 6_433_610_000_000, qty: 120_000_000 }]);
    // The spot decoder reads a futures payload too (it skips T and pu); the futures decoder does
    // not take a spot one, which has no pu to join it to the stream.
    let spot = decode_depth(FUTURES_DOC.as_bytes(), &mut b).unwrap();
    assert_eq!((spot.first_id, spot.final_id), (157, 160));
    assert_eq!(decode_futures_depth(data_of(DEPTH), &mut b).map(drop), Err(DecodeError::MissingField("T")));
}

#[test]
fn futures_depth_errors_are_values() {
    let mut b = LevelBuf::default();
    let cases: &[(&str, DecodeError)] = &[
        (r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"b":[],"a":[]}"#, DecodeError::MissingField("pu")),
        (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"pu":0,"b":[],"a":[]}"#, DecodeError::MissingField("T")),
        (r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"pu":0,"b":[],"a":[]}"#, DecodeError::MissingField("u")),
        (r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"pu":0,"a":[]}"#, DecodeError::MissingField("b")),
        (r#"{"e":"trade","E":1,"T":1,"s":"X","U":1,"u":2,"pu":0,"b":[],"a":[]}"#, DecodeError::WrongEvent),
        (r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"pu":-1,"b":[],"a":[]}"#, DecodeError::Json),
        (r#"{"e":"depthUpdate","E":1,"T":"1","s":"X","U":1,"u":2,"pu":0,"b":[],"a":[]}"#, DecodeError::Json),
        (r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"pu":0,"b":[],"a":[]}x"#, DecodeError::Json),
        (
            r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"pu":0,"b":[["1.2.3","1"]],"a":[]}"#,
            DecodeError::Number(NumError::TwoDots),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(decode_futures_depth(input.as_bytes(), &mut b).map(drop), Err(want.clone()), "{input}");
    }
    // Past the nesting bound: an error, not a stack overflow.
    on_small_stack(|| {
        let deep = nested(80_000);
        let mut bufs = LevelBuf::default();
        for f in [
            format!(r#"{{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":1,"pu":0,"b":{deep},"a":[]}}"#),
            format!(r#"{{"e":"depthUpdate","ps":{deep}}}"#),
        ] {
            assert_eq!(decode_futures_depth(f.as_bytes(), &mut bufs).map(drop), Err(DecodeError::TooDeep));
        }
    });
}

#[test]
fn the_futures_fast_path_takes_binance_layout_and_agrees_with_the_general_decoder() {
    for data in [FUTURES_DOC, FUTURES_BTC] {
        let (fast, general) = both_futures_paths(data.as_bytes());
        assert_eq!(fast.as_ref(), Some(&general), "{data}");
        assert!(general.is_ok(), "{data}: {general:?}");
    }
    // Shapes it leaves to the general decoder, which reads them the same.
    let declined = [
        r#"{"e":"depthUpdate","E":1,"s":"X","T":1,"U":1,"u":2,"pu":0,"b":[],"a":[]}"#, // key order
        r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","ps":"X","U":1,"u":2,"pu":0,"b":[],"a":[]}"#, // ps
        r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"pu":0,"b":[],"a":[],"st":1}"#, // extra key
        r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"pu":00,"b":[],"a":[]}"#, // leading zero
        r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2, "pu":0,"b":[],"a":[]}"#, // space
        r#"{"e":"depthUpdate","E":1,"T":-1,"s":"X","U":1,"u":2,"pu":0,"b":[],"a":[]}"#, // negative T
        r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"pu":18446744073709551616,"b":[],"a":[]}"#, // > u64
    ];
    for data in declined {
        let (fast, general) = both_futures_paths(data.as_bytes());
        assert_eq!(fast, None, "{data}");
        let read = general.is_ok();
        let bad = data.contains(":00,") || data.contains("18446744073709551616");
        assert_eq!(read, !bad, "{data}: {general:?}");
    }
    // The spot layout has no T or pu: declined, and refused by the general decoder.
    let (fast, general) = both_futures_paths(data_of(DEPTH));
    assert_eq!((fast, general), (None, Err(DecodeError::MissingField("T"))));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

    /// One byte of a futures diff changed, removed or put in anywhere: the fast path declines or
    /// agrees with the general decoder.
    #[test]
    fn a_damaged_futures_frame_takes_the_fast_path_only_if_both_agree(
        which in 0usize..2,
        at in proptest::prelude::any::<proptest::sample::Index>(),
        byte in proptest::prelude::any::<u8>(),
        op in 0u8..3,
    ) {
        let mut b = [FUTURES_DOC, FUTURES_BTC][which].as_bytes().to_vec();
        let i = at.index(b.len());
        match op {
            0 => b[i] = byte,
            1 => { b.remove(i); }
            _ => b.insert(i, byte),
        }
        let (fast, general) = both_futures_paths(&b);
        if let Some(fast) = fast {
            proptest::prop_assert_eq!(fast, general, "{}", String::from_utf8_lossy(&b));
        }
    }

    /// Any ids and times in Binance's layout take the fast path and agree.
    #[test]
    fn any_futures_ids_take_the_fast_path_and_agree(
        e in 0i64..i64::MAX, t in 0i64..i64::MAX, first in proptest::prelude::any::<u64>(),
        last in proptest::prelude::any::<u64>(), pu in proptest::prelude::any::<u64>(),
    ) {
        let data = format!(r#"{{"e":"depthUpdate","E":{e},"T":{t},"s":"ETHUSDT","U":{first},"u":{last},"pu":{pu},"b":[["2500.10","1.5"]],"a":[]}}"#);
        let (fast, general) = both_futures_paths(data.as_bytes());
        proptest::prop_assert_eq!(fast.as_ref(), Some(&general));
        let g = general.unwrap();
        proptest::prop_assert_eq!((g.0, g.1, g.3, g.4, g.5), (e, t, first, last, pu));
    }
}

/// A `/fapi/v1/exchangeInfo` body in the documented futures shape: precisions, contract type,
/// tick and step at futures precision, and the 2,400 REQUEST_WEIGHT limit.
#[test]
fn futures_exchange_info_precisions_and_contracts() {
    let body = br#"{"timezone":"UTC","serverTime":1,"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400},{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":1200}],"symbols":[{"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","pricePrecision":2,"quantityPrecision":3,"filters":[{"filterType":"PRICE_FILTER","minPrice":"556.80","maxPrice":"4529764","tickSize":"0.10"},{"filterType":"LOT_SIZE","stepSize":"0.001","maxQty":"1000","minQty":"0.001"}]},{"symbol":"BTCUSDT_261225","pair":"BTCUSDT","contractType":"CURRENT_QUARTER","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","pricePrecision":1,"quantityPrecision":3,"filters":[{"filterType":"PRICE_FILTER","tickSize":"0.1"}]}]}"#;
    let info = decode_exchange_info_all(body).unwrap();
    assert_eq!(info.request_weight_per_minute, Some(2400));
    let btc = info.get("btcusdt").unwrap();
    assert_eq!((btc.price_precision, btc.quantity_precision), (Some(2), Some(3)));
    assert_eq!(btc.contract_type, "PERPETUAL");
    let f = btc.filters.as_ref().unwrap();
    assert_eq!((f.tick.unwrap().units(), f.step), (10_000_000, 100_000));
    assert_eq!(info.get("BTCUSDT_261225").unwrap().contract_type, "CURRENT_QUARTER");
    // Spot bodies have none of these.
    let spot = decode_exchange_info_all(EXCHANGE_INFO.as_bytes()).unwrap();
    assert!(spot.symbols.iter().all(|s| s.price_precision.is_none() && s.contract_type.is_empty()));
}

#[test]
fn futures_stream_names() {
    for (name, kind) in [
        ("btcusdt@depth@0ms", StreamKind::Depth),
        ("btcusdt@depth@500ms", StreamKind::Depth),
        ("btcusdt@depth@100ms", StreamKind::Depth),
        ("btcusdt@depth", StreamKind::Depth),
        ("btcusdt@bookTicker", StreamKind::BookTicker),
        ("btcusdt@aggTrade", StreamKind::AggTrade),
    ] {
        assert_eq!(parse_futures_stream_name(name).map(|s| (s.symbol, s.kind)), Some(("btcusdt", kind)), "{name}");
    }
    assert_eq!(parse_futures_stream_name("@depth@0ms"), None);
    assert_eq!(parse_futures_stream_name("a@b@depth@0ms"), None);
    assert_eq!(parse_stream_name("btcusdt@depth@0ms"), None, "spot does not have it");
}
