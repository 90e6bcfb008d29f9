//! Top-of-book figures in integer arithmetic: spread, mid, microprice and imbalance.
//!
//! All values are 1e-8 units like every price in tickfeed; products go through i128 so nothing
//! overflows or rounds through a float. Imbalance is a ratio in [-1, 1], also in 1e-8 units.

use crate::book::fixed::{Units, SCALE};

/// Top of book in 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Top {
    /// Best bid `(price, qty)`.
    pub bid: Option<(Units, Units)>,
    /// Best ask `(price, qty)`.
    pub ask: Option<(Units, Units)>,
}

/// The published figures for one book state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopMetrics {
    /// Best bid price.
    pub bid: Units,
    /// Quantity at the best bid.
    pub bid_qty: Units,
    /// Best ask price.
    pub ask: Units,
    /// Quantity at the best ask.
    pub ask_qty: Units,
    /// `ask - bid` (negative only if the book is crossed).
    pub spread: Units,
    /// `(bid + ask) / 2`, rounded half away from zero to 1e-8.
    pub mid: Units,
    /// `(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)`: the mid leaning toward the side
    /// with less size, rounded to 1e-8.
    pub microprice: Units,
    /// `(bid_qty - ask_qty) / (bid_qty + ask_qty)` in 1e-8 units of a ratio (1.0 = 100_000_000).
    pub imbalance: Units,
}

/// `num / den` rounded half away from zero; `den > 0`.
fn div_round(num: i128, den: i128) -> i128 {
    let q = num / den;
    let r = num % den;
    if 2 * r.abs() >= den {
        q + num.signum()
    } else {
        q
    }
}

/// The figures, or `None` unless both sides have a level.
pub(crate) fn compute(top: Top) -> Option<TopMetrics> {
    let ((bid, bid_qty), (ask, ask_qty)) = (top.bid?, top.ask?);
    let (b, a, bq, aq) = (bid as i128, ask as i128, bid_qty as i128, ask_qty as i128);
    let qsum = bq + aq;
    // Levels always have qty > 0, so qsum > 0; guard anyway rather than divide by zero.
    let (microprice, imbalance) = if qsum > 0 {
        (div_round(b * aq + a * bq, qsum), div_round((bq - aq) * SCALE as i128, qsum))
    } else {
        (div_round(b + a, 2), 0)
    };
    Some(TopMetrics {
        bid,
        bid_qty,
        ask,
        ask_qty,
        spread: ask - bid,
        mid: div_round(b + a, 2) as i64,
        microprice: microprice as i64,
        imbalance: imbalance as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_exact() {
        // bid 61837.63 x 3.78826, ask 61837.64 x 1.6052 (from the BTCUSDT recording)
        let top = Top { bid: Some((6_183_763_000_000, 378_826_000)), ask: Some((6_183_764_000_000, 160_520_000)) };
        let m = compute(top).unwrap();
        assert_eq!(m.spread, 1_000_000);
        assert_eq!(m.mid, 6_183_763_500_000);
        // Expected values computed independently with exact rationals (Python's Fraction):
        // micro = (b*aq + a*bq) / (bq + aq) = 6183763702380.29 units
        assert_eq!(m.microprice, 6_183_763_702_380);
        // imbalance = (bq - aq) / (bq + aq) = 0.40476058 (in 1e-8)
        assert_eq!(m.imbalance, 40_476_058);
        assert_eq!(compute(Top { bid: None, ask: top.ask }), None);
    }

    #[test]
    fn rounding_is_symmetric() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(-4, 3), -1);
    }
}
