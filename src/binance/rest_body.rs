//! REST bodies: the depth snapshot (`GET /api/v3/depth`) into reused level buffers, and
//! `exchangeInfo`: every symbol's filters, status and assets, and the request-weight limit.
//!
//! Only decoding: fetching, weights and retries are [`super::rest`].

use super::json::{check_depth, finish, from_slice, map_seed, missing, run_seed, DecodeError, ErrSlot};
use super::levels::{LevelBuf, Levels};
use crate::book::fixed::{self, TickSize, Units};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

struct SnapshotVisitor<'b, 's> {
    bufs: &'b mut LevelBuf,
    err: &'s mut ErrSlot,
}

map_seed!(SnapshotVisitor<'_, '_>, u64);

impl<'de> Visitor<'de> for SnapshotVisitor<'_, '_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a depth snapshot object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<u64, A::Error> {
        let mut id = None;
        let (mut saw_b, mut saw_a) = (false, false);
        while let Some(key) = m.next_key::<&str>()? {
            match key {
                "lastUpdateId" => id = Some(m.next_value::<u64>()?),
                "bids" => {
                    saw_b = true;
                    m.next_value_seed(Levels { out: &mut self.bufs.bids, err: &mut *self.err })?
                }
                "asks" => {
                    saw_a = true;
                    m.next_value_seed(Levels { out: &mut self.bufs.asks, err: &mut *self.err })?
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_b {
            return Err(missing(self.err, "bids"));
        }
        if !saw_a {
            return Err(missing(self.err, "asks"));
        }
        id.ok_or_else(|| missing(self.err, "lastUpdateId"))
    }
}

/// Decodes a REST depth snapshot body; returns its `lastUpdateId`, levels into `bufs`.
pub fn decode_snapshot(body: &[u8], bufs: &mut LevelBuf) -> Result<u64, DecodeError> {
    bufs.bids.clear();
    bufs.asks.clear();
    check_depth(body)?;
    let mut slot = ErrSlot::default();
    let r = run_seed(body, SnapshotVisitor { bufs, err: &mut slot });
    finish(r, slot)
}

/// A symbol's trading filters from `GET /api/v3/exchangeInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolFilters {
    /// PRICE_FILTER tickSize (`None` when the rule is disabled: tick 0).
    pub tick: Option<TickSize>,
    /// LOT_SIZE stepSize in 1e-8 units (0 when disabled).
    pub step: Units,
}

/// One entry of `exchangeInfo.symbols`: what tickfeed reads of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolInfo {
    /// The symbol as Binance spells it (uppercase: `BTCUSDT`).
    pub symbol: String,
    /// `TRADING`, `BREAK`, `HALT`, ... (empty when the body has no `status`).
    pub status: String,
    /// `baseAsset` (`BTC`; empty when absent).
    pub base_asset: String,
    /// `quoteAsset` (`USDT`; empty when absent).
    pub quote_asset: String,
    /// The PRICE_FILTER and LOT_SIZE filters, or why they are unusable (this symbol only: the
    /// others are still decoded).
    pub filters: Result<SymbolFilters, DecodeError>,
    /// USDⓈ-M futures' `pricePrecision` (`None` on spot, which has none).
    pub price_precision: Option<u32>,
    /// USDⓈ-M futures' `quantityPrecision`.
    pub quantity_precision: Option<u32>,
    /// USDⓈ-M futures' `contractType` (`PERPETUAL`, `CURRENT_QUARTER`, ...; empty on spot).
    pub contract_type: String,
}

impl SymbolInfo {
    /// True when the symbol trades now (`status` is `TRADING`).
    pub fn is_trading(&self) -> bool {
        self.status == "TRADING"
    }
}

/// An `exchangeInfo` body as tickfeed uses it: every symbol listed and the request-weight limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeInfo {
    /// The tightest `REQUEST_WEIGHT` limit of `rateLimits` as weight per minute (`None` when the
    /// body lists none): the budget Binance enforces per IP.
    pub request_weight_per_minute: Option<u32>,
    /// The symbols, in the order listed.
    pub symbols: Vec<SymbolInfo>,
}

impl ExchangeInfo {
    /// The entry of `symbol`, any case.
    pub fn get(&self, symbol: &str) -> Option<&SymbolInfo> {
        self.symbols.iter().find(|s| s.symbol.eq_ignore_ascii_case(symbol))
    }

    /// The `TRADING` symbols, in the order listed; with `quote`, only those quoted in it (any case).
    pub fn trading<'a>(&'a self, quote: Option<&'a str>) -> impl Iterator<Item = &'a SymbolInfo> + 'a {
        self.symbols
            .iter()
            .filter(move |s| s.is_trading() && quote.is_none_or(|q| s.quote_asset.eq_ignore_ascii_case(q)))
    }
}

/// The parts of an exchangeInfo body that are read; serde skips everything else (most of each
/// symbol: order types, permissions, the other filters) without building it.
#[derive(serde::Deserialize)]
struct InfoBody<'a> {
    #[serde(borrow, default, rename = "rateLimits")]
    rate_limits: Vec<RateLimitBody<'a>>,
    #[serde(borrow)]
    symbols: Option<Vec<SymbolBody<'a>>>,
}

#[derive(serde::Deserialize)]
struct RateLimitBody<'a> {
    #[serde(borrow, rename = "rateLimitType")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    interval: Cow<'a, str>,
    #[serde(rename = "intervalNum", default = "one")]
    interval_num: u64,
    limit: u64,
}

fn one() -> u64 {
    1
}

#[derive(serde::Deserialize)]
struct SymbolBody<'a> {
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    #[serde(borrow, default)]
    status: Cow<'a, str>,
    #[serde(borrow, default, rename = "baseAsset")]
    base_asset: Cow<'a, str>,
    #[serde(borrow, default, rename = "quoteAsset")]
    quote_asset: Cow<'a, str>,
    #[serde(borrow, default)]
    filters: Option<Vec<FilterBody<'a>>>,
    #[serde(default, rename = "pricePrecision")]
    price_precision: Option<u32>,
    #[serde(default, rename = "quantityPrecision")]
    quantity_precision: Option<u32>,
    #[serde(borrow, default, rename = "contractType")]
    contract_type: Cow<'a, str>,
}

#[derive(serde::Deserialize)]
struct FilterBody<'a> {
    #[serde(borrow, default, rename = "filterType")]
    kind: Cow<'a, str>,
    #[serde(borrow, default, rename = "tickSize")]
    tick_size: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "stepSize")]
    step_size: Option<Cow<'a, str>>,
}

fn filters_of(filters: Option<&[FilterBody<'_>]>) -> Result<SymbolFilters, DecodeError> {
    let filters = filters.ok_or(DecodeError::MissingField("filters"))?;
    let mut out = SymbolFilters { tick: None, step: 0 };
    let mut saw_price = false;
    for f in filters {
        match &*f.kind {
            "PRICE_FILTER" => {
                let t = f.tick_size.as_deref().ok_or(DecodeError::MissingField("tickSize"))?;
                out.tick = TickSize::parse(t).map_err(DecodeError::Number)?;
                saw_price = true;
            }
            "LOT_SIZE" => {
                let s = f.step_size.as_deref().ok_or(DecodeError::MissingField("stepSize"))?;
                out.step = fixed::parse_units_str(s).map_err(DecodeError::Number)?;
            }
            _ => {}
        }
    }
    if !saw_price {
        return Err(DecodeError::MissingField("PRICE_FILTER"));
    }
    Ok(out)
}

/// Decodes a whole exchangeInfo body: every symbol (one symbol's unusable filters do not stop the
/// others) and the REQUEST_WEIGHT limit. Off the hot path; a body of every symbol is several MB,
/// bounded by the REST client's body cap before it gets here.
pub fn decode_exchange_info_all(body: &[u8]) -> Result<ExchangeInfo, DecodeError> {
    let b: InfoBody<'_> = from_slice(body)?;
    let symbols = b.symbols.ok_or(DecodeError::MissingField("symbols"))?;
    // Weight per minute of each REQUEST_WEIGHT entry; a limit over N minutes allows limit/N a minute
    // on average, which is what a one-minute window can plan with.
    let request_weight_per_minute = b
        .rate_limits
        .iter()
        .filter(|r| r.kind == "REQUEST_WEIGHT" && r.interval == "MINUTE" && r.interval_num > 0)
        .map(|r| u32::try_from(r.limit / r.interval_num).unwrap_or(u32::MAX))
        .min();
    let symbols = symbols
        .into_iter()
        .map(|s| SymbolInfo {
            filters: filters_of(s.filters.as_deref()),
            symbol: s.symbol.to_ascii_uppercase(),
            status: s.status.into_owned(),
            base_asset: s.base_asset.into_owned(),
            quote_asset: s.quote_asset.into_owned(),
            price_precision: s.price_precision,
            quantity_precision: s.quantity_precision,
            contract_type: s.contract_type.into_owned(),
        })
        .collect();
    Ok(ExchangeInfo { request_weight_per_minute, symbols })
}

/// Decodes the filters of `symbol` from an exchangeInfo body (off the hot path).
pub fn decode_exchange_info(body: &[u8], symbol: &str) -> Result<SymbolFilters, DecodeError> {
    let info = decode_exchange_info_all(body)?;
    info.get(symbol).ok_or(DecodeError::MissingField("symbol"))?.filters.clone()
}
