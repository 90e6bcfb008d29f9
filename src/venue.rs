//! Which Binance market tickfeed follows: spot (the default) or USDⓈ-M futures, and the facts
//! that differ between them (hosts, REST paths and weights, snapshot limits, stream tiers, the
//! connection law).
//!
//! Pure data: no I/O. Where each futures figure comes from is in docs/futures.md (Binance's
//! USDⓈ-M documentation, /work/shared/docs/binance-protocol.md §4.4, and what is judgement).

use crate::binance::StreamKind;
use crate::book::sync::Procedure;

/// A Binance market.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Venue {
    /// Binance spot (`stream.binance.com`, `api.binance.com`).
    #[default]
    Spot,
    /// Binance USDⓈ-M futures (`fstream.binance.com`, `fapi.binance.com`).
    UsdM,
}

/// A futures websocket path tier: since 2026 `fstream.binance.com` serves the high-frequency
/// public streams under `/public` and the others under `/market`, and one connection carries one
/// tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// `/public`: depth, bookTicker, trade.
    Public,
    /// `/market`: aggTrade (and markPrice, forceOrder, kline, which tickfeed does not consume).
    Market,
}

impl Tier {
    /// The path prefix (`/public` or `/market`).
    pub fn prefix(self) -> &'static str {
        match self {
            Tier::Public => "/public",
            Tier::Market => "/market",
        }
    }

    /// The tier of a stream kind.
    pub fn of(kind: StreamKind) -> Tier {
        match kind {
            StreamKind::Depth | StreamKind::Trade | StreamKind::BookTicker => Tier::Public,
            StreamKind::AggTrade => Tier::Market,
        }
    }
}

/// USDⓈ-M's REQUEST_WEIGHT limit per minute (`X-MBX-USED-WEIGHT-1M` reports against it).
pub const USDM_WEIGHT_PER_MINUTE: u32 = 2400;
/// Weight of `GET /fapi/v1/exchangeInfo`.
pub const USDM_EXCHANGE_INFO_WEIGHT: u32 = 1;
/// The `limit` values `GET /fapi/v1/depth` accepts.
pub const USDM_DEPTH_LIMITS: [u32; 7] = [5, 10, 20, 50, 100, 500, 1000];
/// Incoming messages per second per connection Binance futures allows (spot: 5).
pub const USDM_MAX_INCOMING_PER_SEC: u32 = 10;

impl Venue {
    /// `spot` or `usdm`, as `--venue` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Venue::Spot => "spot",
            Venue::UsdM => "usdm",
        }
    }

    /// Parses `--venue` (any case).
    pub fn parse(s: &str) -> Option<Venue> {
        match s.to_ascii_lowercase().as_str() {
            "spot" => Some(Venue::Spot),
            "usdm" => Some(Venue::UsdM),
            _ => None,
        }
    }

    /// The book procedure of the venue's diff depth streams.
    pub fn procedure(self) -> Procedure {
        match self {
            Venue::Spot => Procedure::Spot,
            Venue::UsdM => Procedure::UsdM,
        }
    }

    /// The default websocket base.
    pub fn default_ws(self) -> &'static str {
        match self {
            Venue::Spot => "wss://stream.binance.com:9443",
            Venue::UsdM => "wss://fstream.binance.com",
        }
    }

    /// The default REST base.
    pub fn default_rest(self) -> &'static str {
        match self {
            Venue::Spot => "https://api.binance.com",
            Venue::UsdM => "https://fapi.binance.com",
        }
    }

    /// The REST depth path (without the query).
    pub fn depth_path(self) -> &'static str {
        match self {
            Venue::Spot => "/api/v3/depth",
            Venue::UsdM => "/fapi/v1/depth",
        }
    }

    /// The REST exchangeInfo path.
    pub fn exchange_info_path(self) -> &'static str {
        match self {
            Venue::Spot => "/api/v3/exchangeInfo",
            Venue::UsdM => "/fapi/v1/exchangeInfo",
        }
    }

    /// Weight of one exchangeInfo request.
    pub fn exchange_info_weight(self) -> u32 {
        match self {
            Venue::Spot => crate::binance::rest::EXCHANGE_INFO_WEIGHT,
            Venue::UsdM => USDM_EXCHANGE_INFO_WEIGHT,
        }
    }

    /// Weight of a depth snapshot of `limit` levels.
    pub fn depth_weight(self, limit: u32) -> u32 {
        match self {
            Venue::Spot => crate::binance::rest::depth_weight(limit),
            Venue::UsdM => match limit {
                0..=50 => 2,
                51..=100 => 5,
                101..=500 => 10,
                _ => 20,
            },
        }
    }

    /// The request weight budget per minute Binance documents.
    pub fn weight_per_minute(self) -> u32 {
        match self {
            Venue::Spot => crate::binance::rest::DEFAULT_WEIGHT_PER_MINUTE,
            Venue::UsdM => USDM_WEIGHT_PER_MINUTE,
        }
    }

    /// The largest snapshot `limit`.
    pub fn max_depth_limit(self) -> u32 {
        match self {
            Venue::Spot => 5000,
            Venue::UsdM => 1000,
        }
    }

    /// The snapshot `limit` sent for a requested `n` levels: spot takes any 1..=5000; futures
    /// takes only [`USDM_DEPTH_LIMITS`], so `n` is rounded up to the next one it accepts (more
    /// levels than asked, never fewer). `None` when `n` is out of the venue's range.
    pub fn depth_limit(self, n: u32) -> Option<u32> {
        match self {
            Venue::Spot => (1..=5000).contains(&n).then_some(n),
            Venue::UsdM => USDM_DEPTH_LIMITS.iter().copied().find(|&l| l >= n).filter(|_| n >= 1),
        }
    }

    /// The limits `--depth-limit auto` chooses from, deepest first (the largest of each weight
    /// class).
    pub fn auto_limits(self) -> &'static [u32] {
        match self {
            Venue::Spot => &[5000, 1000, 500, 100],
            Venue::UsdM => &[1000, 500, 100, 50],
        }
    }

    /// The websocket path of a combined stream carrying `streams` (`a/b/c`): spot's
    /// `/stream?streams=..&timeUnit=MICROSECOND`, futures' `<tier>/stream?streams=..` (futures
    /// documents no `timeUnit`: its times stay in milliseconds).
    pub fn stream_path(self, tier: Option<Tier>, streams: &str) -> String {
        match self {
            Venue::Spot => format!("/stream?streams={streams}&timeUnit=MICROSECOND"),
            Venue::UsdM => format!("{}/stream?streams={streams}", tier.unwrap_or(Tier::Public).prefix()),
        }
    }
}

impl std::fmt::Display for Venue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futures_limits_round_up_to_the_next_one_binance_accepts() {
        let v = Venue::UsdM;
        assert_eq!(v.depth_limit(0), None);
        assert_eq!(v.depth_limit(1), Some(5));
        assert_eq!(v.depth_limit(5), Some(5));
        assert_eq!(v.depth_limit(6), Some(10));
        assert_eq!(v.depth_limit(101), Some(500));
        assert_eq!(v.depth_limit(1000), Some(1000));
        assert_eq!(v.depth_limit(1001), None);
        assert_eq!(Venue::Spot.depth_limit(1001), Some(1001));
        assert_eq!(Venue::Spot.depth_limit(5001), None);
    }

    #[test]
    fn futures_weights_by_limit() {
        let w: Vec<u32> = USDM_DEPTH_LIMITS.iter().map(|&l| Venue::UsdM.depth_weight(l)).collect();
        assert_eq!(w, [2, 2, 2, 2, 5, 10, 20]);
        assert_eq!(Venue::Spot.depth_weight(1000), 50, "spot unchanged");
        assert_eq!(Venue::UsdM.exchange_info_weight(), 1);
        assert_eq!(Venue::UsdM.weight_per_minute(), 2400);
    }

    #[test]
    fn tiers_and_paths() {
        assert_eq!(Tier::of(StreamKind::Depth), Tier::Public);
        assert_eq!(Tier::of(StreamKind::BookTicker), Tier::Public);
        assert_eq!(Tier::of(StreamKind::Trade), Tier::Public);
        assert_eq!(Tier::of(StreamKind::AggTrade), Tier::Market);
        assert_eq!(Venue::UsdM.stream_path(Some(Tier::Market), "a@aggTrade"), "/market/stream?streams=a@aggTrade");
        assert_eq!(Venue::Spot.stream_path(None, "a@trade"), "/stream?streams=a@trade&timeUnit=MICROSECOND");
        assert_eq!(Venue::parse("USDM"), Some(Venue::UsdM));
        assert_eq!(Venue::parse("coinm"), None);
    }
}
