//! REST bodies: the depth snapshot (`GET /api/v3/depth`) into reused level buffers, and a symbol's
//! filters from `exchangeInfo`.
//!
//! Only decoding: fetching, weights and retries are [`super::rest`].

use super::json::{finish, map_seed, missing, run_seed, DecodeError, ErrSlot};
use super::levels::{LevelBuf, Levels};
use crate::book::fixed::{self, TickSize, Units};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
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
    let mut slot = ErrSlot::default();
    let r = run_seed(body, SnapshotVisitor { bufs, err: &mut slot });
    finish(r, slot)
}

/// A symbol's trading filters from `GET /api/v3/exchangeInfo?symbol=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolFilters {
    /// PRICE_FILTER tickSize (`None` when the rule is disabled: tick 0).
    pub tick: Option<TickSize>,
    /// LOT_SIZE stepSize in 1e-8 units (0 when disabled).
    pub step: Units,
}

/// Decodes the filters of `symbol` from an exchangeInfo body (off the hot path).
pub fn decode_exchange_info(body: &[u8], symbol: &str) -> Result<SymbolFilters, DecodeError> {
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};
    let v: sonic_rs::Value = sonic_rs::from_slice(body).map_err(|_| DecodeError::Json)?;
    let symbols = v.get("symbols").and_then(|s| s.as_array()).ok_or(DecodeError::MissingField("symbols"))?;
    let entry = symbols
        .iter()
        .find(|s| s.get("symbol").and_then(|x| x.as_str()).is_some_and(|x| x.eq_ignore_ascii_case(symbol)))
        .ok_or(DecodeError::MissingField("symbol"))?;
    let filters = entry.get("filters").and_then(|f| f.as_array()).ok_or(DecodeError::MissingField("filters"))?;
    let mut out = SymbolFilters { tick: None, step: 0 };
    let mut saw_price = false;
    for f in filters.iter() {
        match f.get("filterType").and_then(|t| t.as_str()) {
            Some("PRICE_FILTER") => {
                let t = f.get("tickSize").and_then(|t| t.as_str()).ok_or(DecodeError::MissingField("tickSize"))?;
                out.tick = TickSize::parse(t).map_err(DecodeError::Number)?;
                saw_price = true;
            }
            Some("LOT_SIZE") => {
                let s = f.get("stepSize").and_then(|t| t.as_str()).ok_or(DecodeError::MissingField("stepSize"))?;
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
