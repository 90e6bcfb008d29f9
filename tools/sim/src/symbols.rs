//! Per-symbol trading rules the simulator advertises (tick size, lot size, assets) and uses to
//! shape its synthetic markets, plus the `exchangeInfo` body built from them.
//!
//! Values for the well-known pairs follow Binance's published filters (BTCUSDT tick 0.01, step
//! 0.00001); other named symbols get plausible made-up rules. [`SymbolSpec::generated`] makes a
//! whole synthetic market (`SYN0000USDT`, `SYN0001BTC`, ...) with prices from 0.00001 to 99,999,
//! varied tick and lot sizes, several quote assets and a few symbols in `BREAK` or `HALT`. This is
//! not a copy of Binance's full exchangeInfo: it has the fields a feed handler reads, in Binance's
//! key order.

use crate::decimal::{push_units, SCALE};
use crate::rng::Rng;

/// A symbol's trading status, as `exchangeInfo` reports it (Binance has a few more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SymbolStatus {
    /// `TRADING`: the market moves.
    Trading,
    /// `BREAK`: not trading; the simulator publishes nothing for it.
    Break,
    /// `HALT`: not trading; the simulator publishes nothing for it.
    Halt,
}

impl SymbolStatus {
    /// Binance's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SymbolStatus::Trading => "TRADING",
            SymbolStatus::Break => "BREAK",
            SymbolStatus::Halt => "HALT",
        }
    }
}

/// Quote assets of generated symbols and how often each is drawn (out of 100), roughly as on
/// Binance spot: mostly USDT, then BTC, the other stablecoins, ETH, BNB and a fiat.
const GENERATED_QUOTES: [(&str, u64); 8] =
    [("USDT", 45), ("BTC", 15), ("FDUSD", 10), ("USDC", 10), ("ETH", 6), ("BNB", 5), ("TRY", 5), ("EUR", 4)];

/// Trading rules of one symbol, all amounts in 1e-8 units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolSpec {
    /// Uppercase symbol, as in payloads and REST ("BTCUSDT").
    pub symbol: String,
    /// Base asset ("BTC").
    pub base: String,
    /// Quote asset ("USDT").
    pub quote: String,
    /// PRICE_FILTER tickSize.
    pub tick: i64,
    /// LOT_SIZE stepSize (and minQty).
    pub step: i64,
    /// LOT_SIZE maxQty.
    pub max_qty: i64,
    /// Where a synthetic market starts its mid price.
    pub start_mid: i64,
    /// `status` in exchangeInfo; only `TRADING` symbols move.
    pub status: SymbolStatus,
    /// A USDⓈ-M perpetual contract's precisions (`SimConfig::venue` usdm); `None` on spot.
    pub futures: Option<FuturesRules>,
}

/// What a USDⓈ-M futures contract adds to a symbol's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuturesRules {
    /// `pricePrecision`: fractional digits of every price in payloads and REST (BTCUSDT: 2,
    /// with a tick of 0.10, so prices read "64336.10").
    pub price_precision: u32,
    /// `quantityPrecision`: fractional digits of every quantity (BTCUSDT: 3, "0.003").
    pub quantity_precision: u32,
}

const QUOTES: [&str; 8] = ["FDUSD", "USDT", "USDC", "TUSD", "BTC", "ETH", "BNB", "EUR"];

impl SymbolSpec {
    /// Rules for `symbol` (any case). Known pairs get Binance's values; others get a plausible
    /// 25.000-ish market with tick 0.001.
    pub fn for_symbol(symbol: &str) -> SymbolSpec {
        let upper = symbol.to_ascii_uppercase();
        let (base, quote) = split_pair(&upper);
        let u = |whole: i64, frac_num: i64, frac_den: i64| whole * SCALE + frac_num * SCALE / frac_den;
        let (tick, step, max_qty, mid) = match upper.as_str() {
            "BTCUSDT" | "BTCFDUSD" | "BTCUSDC" => (u(0, 1, 100), u(0, 1, 100_000), u(9000, 0, 1), u(60_000, 0, 1)),
            "ETHUSDT" | "ETHFDUSD" | "ETHUSDC" => (u(0, 1, 100), u(0, 1, 10_000), u(9000, 0, 1), u(2_700, 0, 1)),
            "BNBUSDT" => (u(0, 1, 100), u(0, 1, 1000), u(9000, 0, 1), u(550, 0, 1)),
            "SOLUSDT" => (u(0, 1, 100), u(0, 1, 1000), u(9000, 0, 1), u(150, 0, 1)),
            "XRPUSDT" => (u(0, 1, 10_000), u(0, 1, 10), u(9_000_000, 0, 1), u(0, 1, 2)),
            "ETHBTC" => (u(0, 1, 100_000), u(0, 1, 10_000), u(100_000, 0, 1), u(0, 45, 1000)),
            _ => (u(0, 1, 1000), u(0, 1, 100), u(9_000_000, 0, 1), u(25, 0, 1)),
        };
        SymbolSpec {
            symbol: upper.clone(),
            base,
            quote,
            tick,
            step,
            max_qty,
            start_mid: mid,
            status: SymbolStatus::Trading,
            futures: None,
        }
    }

    /// This symbol as a USDⓈ-M perpetual contract: BTCUSDT and ETHUSDT get Binance futures' rules
    /// (ticks 0.10 and 0.01, step 0.001, price precision 2, quantity precision 3); any other
    /// keeps its spot tick and step, with the precisions those need (the simulator's choice).
    pub fn into_futures(mut self) -> SymbolSpec {
        let u = |whole: i64, num: i64, den: i64| whole * SCALE + num * SCALE / den;
        let (pp, qp) = match self.symbol.as_str() {
            "BTCUSDT" => {
                (self.tick, self.step, self.max_qty) = (u(0, 1, 10), u(0, 1, 1000), u(1000, 0, 1));
                (2, 3)
            }
            "ETHUSDT" => {
                (self.tick, self.step, self.max_qty) = (u(0, 1, 100), u(0, 1, 1000), u(10_000, 0, 1));
                (2, 3)
            }
            _ => (crate::decimal::decimals_of(self.tick) as u32, crate::decimal::decimals_of(self.step) as u32),
        };
        self.start_mid = (self.start_mid / self.tick).max(1) * self.tick;
        self.futures = Some(FuturesRules { price_precision: pp, quantity_precision: qp });
        self
    }

    /// Fractional digits of prices and quantities in payloads: futures' precisions, or spot's 8.
    pub(crate) fn decimals(&self) -> (usize, usize) {
        match self.futures {
            Some(f) => (f.price_precision as usize, f.quantity_precision as usize),
            None => (crate::decimal::DECIMALS, crate::decimal::DECIMALS),
        }
    }

    /// The `index`-th symbol of a generated market, fixed by `seed`: `SYN{index:04}{QUOTE}`, a
    /// start price log-uniform from 0.00001 to 99,999 with 3 to 6 significant tick digits (never
    /// finer than 1e-8), a lot step that shrinks as the price grows, a quote asset drawn from
    /// Binance-like shares, and status `BREAK` for about 3% and `HALT` for about 1% of them.
    pub fn generated(index: usize, seed: u64) -> SymbolSpec {
        // The constant keeps these draws apart from the market generator's, which also mixes
        // the seed.
        let mut rng = Rng::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0005_EED0_F5E7);
        let mut pick = rng.below(100);
        let mut quote = GENERATED_QUOTES[0].0;
        for (q, share) in GENERATED_QUOTES {
            if pick < share {
                quote = q;
                break;
            }
            pick -= share;
        }
        // Price = mantissa (1.000..9.999) x 10^exp, exp in -5..=4; in 1e-8 units 10^(exp + 8).
        let exp = rng.range_i64(-5, 4);
        let mantissa = rng.range_i64(1000, 9999);
        let price = mantissa * 10i64.pow((exp + 8) as u32) / 1000;
        let tick = 10i64.pow((exp + 8 - rng.range_i64(3, 6)).max(0) as u32);
        let step = 10i64.pow((-exp - 1 + rng.range_i64(0, 2) + 8).clamp(0, 10) as u32);
        let status = match rng.below(100) {
            0..=2 => SymbolStatus::Break,
            3 => SymbolStatus::Halt,
            _ => SymbolStatus::Trading,
        };
        let base = format!("SYN{index:04}");
        SymbolSpec {
            symbol: format!("{base}{quote}"),
            base,
            quote: quote.to_string(),
            tick,
            step,
            max_qty: step.saturating_mul(9_000_000),
            start_mid: (price / tick).max(1) * tick,
            status,
            futures: None,
        }
    }

    /// Lowercase symbol, as in stream names.
    pub fn lower(&self) -> String {
        self.symbol.to_ascii_lowercase()
    }

    /// Appends this contract's object of `/fapi/v1/exchangeInfo`'s `symbols`, in the documented
    /// USDⓈ-M shape: `pair`, `contractType` PERPETUAL, `pricePrecision`, `quantityPrecision`, and
    /// filters written at futures precision (`"tickSize":"0.10"`).
    fn push_futures_symbol(&self, s: &mut String, f: FuturesRules) {
        let (pd, qd) = (f.price_precision as usize, f.quantity_precision as usize);
        let dp = |s: &mut String, v: i64, d: usize| crate::decimal::push_units_dp(s, v, d);
        s.push_str("{\"symbol\":\"");
        s.push_str(&self.symbol);
        s.push_str("\",\"pair\":\"");
        s.push_str(&self.symbol);
        s.push_str("\",\"contractType\":\"PERPETUAL\",\"deliveryDate\":4133404800000,\"onboardDate\":1569398400000,\"status\":\"");
        s.push_str(self.status.as_str());
        s.push_str("\",\"maintMarginPercent\":\"2.5000\",\"requiredMarginPercent\":\"5.0000\",\"baseAsset\":\"");
        s.push_str(&self.base);
        s.push_str("\",\"quoteAsset\":\"");
        s.push_str(&self.quote);
        s.push_str("\",\"marginAsset\":\"");
        s.push_str(&self.quote);
        s.push_str("\",\"pricePrecision\":");
        s.push_str(&f.price_precision.to_string());
        s.push_str(",\"quantityPrecision\":");
        s.push_str(&f.quantity_precision.to_string());
        s.push_str(",\"baseAssetPrecision\":8,\"quotePrecision\":8,\"underlyingType\":\"COIN\",\"underlyingSubType\":[],\"settlePlan\":0,\"triggerProtect\":\"0.0500\",");
        s.push_str("\"filters\":[{\"filterType\":\"PRICE_FILTER\",\"minPrice\":\"");
        dp(s, self.tick, pd);
        s.push_str("\",\"maxPrice\":\"");
        dp(s, 4_529_764 * SCALE, pd);
        s.push_str("\",\"tickSize\":\"");
        dp(s, self.tick, pd);
        s.push_str("\"},{\"filterType\":\"LOT_SIZE\",\"stepSize\":\"");
        dp(s, self.step, qd);
        s.push_str("\",\"maxQty\":\"");
        dp(s, self.max_qty, qd);
        s.push_str("\",\"minQty\":\"");
        dp(s, self.step, qd);
        s.push_str("\"},{\"filterType\":\"MARKET_LOT_SIZE\",\"stepSize\":\"");
        dp(s, self.step, qd);
        s.push_str("\",\"maxQty\":\"");
        dp(s, self.max_qty / 10, qd);
        s.push_str("\",\"minQty\":\"");
        dp(s, self.step, qd);
        s.push_str("\"},{\"filterType\":\"MAX_NUM_ORDERS\",\"limit\":200},{\"filterType\":\"MAX_NUM_ALGO_ORDERS\",\"limit\":10},{\"filterType\":\"MIN_NOTIONAL\",\"notional\":\"100\"},{\"filterType\":\"PERCENT_PRICE\",\"multiplierUp\":\"1.0500\",\"multiplierDown\":\"0.9500\",\"multiplierDecimal\":\"4\"}],");
        s.push_str("\"orderTypes\":[\"LIMIT\",\"MARKET\",\"STOP\",\"STOP_MARKET\",\"TAKE_PROFIT\",\"TAKE_PROFIT_MARKET\",\"TRAILING_STOP_MARKET\"],\"timeInForce\":[\"GTC\",\"IOC\",\"FOK\",\"GTX\",\"GTD\"]}");
    }

    /// Appends this symbol's object of `exchangeInfo.symbols`.
    pub(crate) fn push_exchange_info_symbol(&self, s: &mut String) {
        if let Some(f) = self.futures {
            return self.push_futures_symbol(s, f);
        }
        // Binance's BTCUSDT maxPrice; plenty for every synthetic market.
        let max_price = 1_000_000 * SCALE;
        s.push_str("{\"symbol\":\"");
        s.push_str(&self.symbol);
        s.push_str("\",\"status\":\"");
        s.push_str(self.status.as_str());
        s.push_str("\",\"baseAsset\":\"");
        s.push_str(&self.base);
        s.push_str("\",\"baseAssetPrecision\":8,\"quoteAsset\":\"");
        s.push_str(&self.quote);
        s.push_str("\",\"quotePrecision\":8,\"quoteAssetPrecision\":8,\"baseCommissionPrecision\":8,\"quoteCommissionPrecision\":8,");
        s.push_str("\"orderTypes\":[\"LIMIT\",\"LIMIT_MAKER\",\"MARKET\",\"STOP_LOSS\",\"STOP_LOSS_LIMIT\",\"TAKE_PROFIT\",\"TAKE_PROFIT_LIMIT\"],");
        s.push_str("\"icebergAllowed\":true,\"ocoAllowed\":true,\"otoAllowed\":true,\"quoteOrderQtyMarketAllowed\":true,\"allowTrailingStop\":true,\"cancelReplaceAllowed\":true,\"amendAllowed\":true,\"isSpotTradingAllowed\":true,\"isMarginTradingAllowed\":true,");
        s.push_str("\"filters\":[{\"filterType\":\"PRICE_FILTER\",\"minPrice\":\"");
        push_units(s, self.tick);
        s.push_str("\",\"maxPrice\":\"");
        push_units(s, max_price);
        s.push_str("\",\"tickSize\":\"");
        push_units(s, self.tick);
        s.push_str("\"},{\"filterType\":\"LOT_SIZE\",\"minQty\":\"");
        push_units(s, self.step);
        s.push_str("\",\"maxQty\":\"");
        push_units(s, self.max_qty);
        s.push_str("\",\"stepSize\":\"");
        push_units(s, self.step);
        s.push_str("\"},{\"filterType\":\"ICEBERG_PARTS\",\"limit\":10},{\"filterType\":\"MARKET_LOT_SIZE\",\"minQty\":\"0.00000000\",\"maxQty\":\"");
        push_units(s, self.max_qty / 10);
        s.push_str("\",\"stepSize\":\"0.00000000\"},{\"filterType\":\"TRAILING_DELTA\",\"minTrailingAboveDelta\":10,\"maxTrailingAboveDelta\":2000,\"minTrailingBelowDelta\":10,\"maxTrailingBelowDelta\":2000},");
        s.push_str("{\"filterType\":\"PERCENT_PRICE_BY_SIDE\",\"bidMultiplierUp\":\"5\",\"bidMultiplierDown\":\"0.2\",\"askMultiplierUp\":\"5\",\"askMultiplierDown\":\"0.2\",\"avgPriceMins\":5},");
        s.push_str("{\"filterType\":\"NOTIONAL\",\"minNotional\":\"5.00000000\",\"applyMinToMarket\":true,\"maxNotional\":\"9000000.00000000\",\"applyMaxToMarket\":false,\"avgPriceMins\":5},");
        s.push_str("{\"filterType\":\"MAX_NUM_ORDERS\",\"maxNumOrders\":200},{\"filterType\":\"MAX_NUM_ALGO_ORDERS\",\"maxNumAlgoOrders\":5}],");
        s.push_str("\"permissions\":[],\"permissionSets\":[[\"SPOT\",\"MARGIN\"]],\"defaultSelfTradePreventionMode\":\"EXPIRE_MAKER\",\"allowedSelfTradePreventionModes\":[\"EXPIRE_TAKER\",\"EXPIRE_MAKER\",\"EXPIRE_BOTH\",\"DECREMENT\"]}");
    }
}

/// Splits "BTCUSDT" into ("BTC", "USDT") by known quote suffixes.
fn split_pair(upper: &str) -> (String, String) {
    for q in QUOTES {
        if upper.len() > q.len() && upper.ends_with(q) {
            return (upper[..upper.len() - q.len()].to_string(), q.to_string());
        }
    }
    (upper.to_string(), String::new())
}

/// The body of `GET /api/v3/exchangeInfo` for `specs`, Binance's top-level key order.
/// `rateLimits` are Binance's (REQUEST_WEIGHT 6000 per minute, ORDERS 100 per 10 s and 200,000 a
/// day, RAW_REQUESTS 300,000 per 5 minutes since 2026-04-02) except that REQUEST_WEIGHT is the
/// simulator's own `weight_limit`, and absent when it has none.
pub(crate) fn exchange_info_json(specs: &[&SymbolSpec], server_time_ms: i64, weight_limit: Option<u32>) -> String {
    if specs.first().is_some_and(|s| s.futures.is_some()) {
        return futures_exchange_info_json(specs, server_time_ms, weight_limit);
    }
    let mut s = String::with_capacity(2048 * specs.len().max(1));
    s.push_str("{\"timezone\":\"UTC\",\"serverTime\":");
    s.push_str(&server_time_ms.to_string());
    s.push_str(",\"rateLimits\":[");
    if let Some(limit) = weight_limit {
        s.push_str("{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":");
        s.push_str(&limit.to_string());
        s.push_str("},");
    }
    s.push_str("{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\",\"intervalNum\":10,\"limit\":100},{\"rateLimitType\":\"ORDERS\",\"interval\":\"DAY\",\"intervalNum\":1,\"limit\":200000},{\"rateLimitType\":\"RAW_REQUESTS\",\"interval\":\"MINUTE\",\"intervalNum\":5,\"limit\":300000}],\"exchangeFilters\":[],\"symbols\":[");
    for (i, spec) in specs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        spec.push_exchange_info_symbol(&mut s);
    }
    s.push_str("]}");
    s
}

/// The body of `GET /fapi/v1/exchangeInfo`: USDⓈ-M's top-level keys and rate limits
/// (REQUEST_WEIGHT 2,400 a minute, the simulator's `weight_limit`; ORDERS 1,200 a minute and 300
/// per 10 s), every contract listed (futures takes no symbol parameter).
fn futures_exchange_info_json(specs: &[&SymbolSpec], server_time_ms: i64, weight_limit: Option<u32>) -> String {
    let mut s = String::with_capacity(2048 * specs.len().max(1));
    s.push_str("{\"timezone\":\"UTC\",\"serverTime\":");
    s.push_str(&server_time_ms.to_string());
    s.push_str(",\"futuresType\":\"U_MARGINED\",\"rateLimits\":[");
    if let Some(limit) = weight_limit {
        s.push_str("{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":");
        s.push_str(&limit.to_string());
        s.push_str("},");
    }
    s.push_str("{\"rateLimitType\":\"ORDERS\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":1200},{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\",\"intervalNum\":10,\"limit\":300}],\"exchangeFilters\":[],\"assets\":[],\"symbols\":[");
    for (i, spec) in specs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        spec.push_exchange_info_symbol(&mut s);
    }
    s.push_str("]}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futures_contracts_have_futures_rules() {
        let spec = SymbolSpec::for_symbol("btcusdt").into_futures();
        assert_eq!((spec.tick, spec.step), (10_000_000, 100_000));
        assert_eq!(spec.decimals(), (2, 3));
        let body = exchange_info_json(&[&spec], 1, Some(2400));
        assert!(body.starts_with(r#"{"timezone":"UTC","serverTime":1,"futuresType":"U_MARGINED","rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400}"#), "{body}");
        assert!(body.contains(r#""contractType":"PERPETUAL""#));
        assert!(body.contains(r#""pricePrecision":2,"quantityPrecision":3"#));
        assert!(
            body.contains(
                r#"{"filterType":"PRICE_FILTER","minPrice":"0.10","maxPrice":"4529764.00","tickSize":"0.10"}"#
            ),
            "{body}"
        );
        assert!(
            body.contains(r#"{"filterType":"LOT_SIZE","stepSize":"0.001","maxQty":"1000.000","minQty":"0.001"}"#),
            "{body}"
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["symbols"][0]["symbol"], "BTCUSDT");
        let x = SymbolSpec::for_symbol("xrpusdt").into_futures();
        assert_eq!(x.decimals(), (4, 1));
    }

    #[test]
    fn btcusdt_has_binance_filters() {
        let spec = SymbolSpec::for_symbol("btcusdt");
        assert_eq!(spec.symbol, "BTCUSDT");
        assert_eq!((spec.base.as_str(), spec.quote.as_str()), ("BTC", "USDT"));
        let body = exchange_info_json(&[&spec], 1, Some(6000));
        assert!(body.contains(r#"{"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"#));
        assert!(body.contains(r#""tickSize":"0.01000000"}"#));
        assert!(body.contains(
            r#"{"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"}"#
        ));
        assert!(body.starts_with(r#"{"timezone":"UTC","serverTime":1,"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT""#));
    }

    #[test]
    fn unknown_symbols_get_plausible_rules() {
        let spec = SymbolSpec::for_symbol("FOOUSDT");
        assert_eq!(spec.base, "FOO");
        assert!(spec.tick > 0 && spec.step > 0 && spec.start_mid % spec.tick == 0);
        let x = SymbolSpec::for_symbol("xrpusdt");
        assert_eq!(x.start_mid % x.tick, 0);
    }

    #[test]
    fn generated_symbols_vary_like_a_whole_market() {
        let all: Vec<SymbolSpec> = (0..2000).map(|i| SymbolSpec::generated(i, 1)).collect();
        assert_eq!(all[42].symbol, format!("SYN0042{}", all[42].quote));
        assert_eq!(SymbolSpec::generated(42, 1), all[42], "fixed by the seed");
        let min = all.iter().map(|s| s.start_mid).min().unwrap();
        let max = all.iter().map(|s| s.start_mid).max().unwrap();
        assert!(min < 10 * 1000 && max > 10_000 * SCALE, "0.00001 to 100,000: {min} {max}");
        for s in &all {
            assert!(s.tick >= 1 && s.step >= 1 && s.start_mid % s.tick == 0, "{s:?}");
            assert!(s.start_mid / s.tick >= 100, "enough ticks below the price: {s:?}");
            assert!(s.symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        }
        let count = |f: &dyn Fn(&SymbolSpec) -> bool| all.iter().filter(|s| f(s)).count();
        assert!(count(&|s| s.quote == "USDT") > 700);
        assert!(count(&|s| s.quote == "BTC") > 200 && count(&|s| s.quote == "FDUSD") > 100);
        assert!((30..=100).contains(&count(&|s| s.status == SymbolStatus::Break)));
        assert!((5..=40).contains(&count(&|s| s.status == SymbolStatus::Halt)));
        let ticks: std::collections::HashSet<i64> = all.iter().map(|s| s.tick).collect();
        assert!(ticks.len() >= 10, "{ticks:?}");
        let body = exchange_info_json(&[&all[0]], 1, None);
        assert!(body.contains(r#""rateLimits":[{"rateLimitType":"ORDERS""#), "no weight limit, no entry");
    }
}
