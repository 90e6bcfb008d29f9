//! Per-symbol trading rules the simulator advertises (tick size, lot size, assets) and uses to
//! shape its synthetic markets, plus the `exchangeInfo` body built from them.
//!
//! Values for the well-known pairs follow Binance's published filters (BTCUSDT tick 0.01, step
//! 0.00001); other symbols get plausible made-up rules. This is not a copy of Binance's full
//! exchangeInfo: it has the fields a feed handler reads, in Binance's key order.

use crate::decimal::{push_units, SCALE};

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
        SymbolSpec { symbol: upper.clone(), base, quote, tick, step, max_qty, start_mid: mid }
    }

    /// Lowercase symbol, as in stream names.
    pub fn lower(&self) -> String {
        self.symbol.to_ascii_lowercase()
    }

    /// Appends this symbol's object of `exchangeInfo.symbols`.
    pub(crate) fn push_exchange_info_symbol(&self, s: &mut String) {
        // Binance's BTCUSDT maxPrice; plenty for every synthetic market.
        let max_price = 1_000_000 * SCALE;
        s.push_str("{\"symbol\":\"");
        s.push_str(&self.symbol);
        s.push_str("\",\"status\":\"TRADING\",\"baseAsset\":\"");
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
pub(crate) fn exchange_info_json(specs: &[&SymbolSpec], server_time_ms: i64) -> String {
    let mut s = String::with_capacity(2048 * specs.len().max(1));
    s.push_str("{\"timezone\":\"UTC\",\"serverTime\":");
    s.push_str(&server_time_ms.to_string());
    s.push_str(",\"rateLimits\":[{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":6000},{\"rateLimitType\":\"ORDERS\",\"interval\":\"SECOND\",\"intervalNum\":10,\"limit\":100},{\"rateLimitType\":\"ORDERS\",\"interval\":\"DAY\",\"intervalNum\":1,\"limit\":200000},{\"rateLimitType\":\"RAW_REQUESTS\",\"interval\":\"MINUTE\",\"intervalNum\":5,\"limit\":300000}],\"exchangeFilters\":[],\"symbols\":[");
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
    fn btcusdt_has_binance_filters() {
        let spec = SymbolSpec::for_symbol("btcusdt");
        assert_eq!(spec.symbol, "BTCUSDT");
        assert_eq!((spec.base.as_str(), spec.quote.as_str()), ("BTC", "USDT"));
        let body = exchange_info_json(&[&spec], 1);
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
}
