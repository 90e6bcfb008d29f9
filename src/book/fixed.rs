//! Fixed-point decimals: Binance's price and quantity strings to integers and back, never via f64.
//!
//! Every price and quantity in tickfeed is an `i64` count of 1e-8 units ("units"), the scale Binance
//! itself uses internally (its overflow cap is i64::MAX / 1e8). Prices are further divided by the
//! symbol's tick size into "ticks", the index of the price ladder. This module is pure: it parses
//! bytes, formats into a caller-owned buffer, and never allocates or panics on any input.
//!
//! It is not a general decimal library: no signs on input, at most 8 fractional digits, no exponents.

use std::fmt;

/// Fractional digits of the fixed scale.
pub const SCALE_DIGITS: u32 = 8;
/// One whole unit of price or quantity, in 1e-8 units.
pub const SCALE: i64 = 100_000_000;

/// An amount in 1e-8 units (a price or a quantity straight from the wire).
pub type Units = i64;
/// A price divided by the tick size: the ladder index.
pub type Ticks = i64;

/// Why a decimal string was refused. Every variant is a property of the input, never a bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NumError {
    /// Zero-length input.
    Empty,
    /// A byte that is neither a digit nor the decimal point (letters, spaces, exponents, `+`).
    InvalidChar,
    /// A leading minus sign: Binance prices and quantities are never negative.
    Negative,
    /// More than one decimal point.
    TwoDots,
    /// A missing integer or fraction part (".5", "5.").
    MissingDigits,
    /// More than 8 fractional digits: not representable at the 1e-8 scale.
    TooManyDecimals,
    /// The value does not fit an i64 of 1e-8 units (above 92,233,720,368.54775807).
    Overflow,
}

impl fmt::Display for NumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            NumError::Empty => "empty number",
            NumError::InvalidChar => "invalid character in number",
            NumError::Negative => "negative number",
            NumError::TwoDots => "number with two decimal points",
            NumError::MissingDigits => "number with a missing integer or fraction part",
            NumError::TooManyDecimals => "number with more than 8 decimals",
            NumError::Overflow => "number too large",
        };
        f.write_str(s)
    }
}

impl std::error::Error for NumError {}

const POW10: [i64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// Parses a non-negative decimal string (`digits ['.' digits]`, at most 8 decimals) into 1e-8 units.
///
/// `"61837.63000000"` gives `6_183_763_000_000`; `"0"` gives 0. Every malformed input is an error.
/// Binance always sends exactly 8 decimals; that shape takes a SWAR fast path (the 8 fraction
/// digits validated and combined in one u64), everything else the byte loop. Both give the same
/// answer for every input (a property test holds them to it).
#[inline]
pub fn parse_units(s: &[u8]) -> Result<Units, NumError> {
    let n = s.len();
    // Fast path: 1..=11 integer digits, '.', exactly 8 fraction digits. 11 digits cannot
    // overflow u64 before the final range check.
    if (10..=20).contains(&n) && s[n - 9] == b'.' {
        if let Some(frac) = swar_8_digits(&s[n - 8..]) {
            let mut int: u64 = 0;
            let mut ok = true;
            for &c in &s[..n - 9] {
                let d = c.wrapping_sub(b'0');
                ok &= d <= 9;
                int = int.wrapping_mul(10).wrapping_add(d as u64);
            }
            if ok && n - 9 <= 11 {
                let total = int * SCALE as u64 + frac;
                return if total > i64::MAX as u64 { Err(NumError::Overflow) } else { Ok(total as i64) };
            }
        }
    }
    parse_units_slow(s)
}

/// Eight ASCII digits to their value, or `None` if any byte is not a digit.
#[inline]
pub fn swar_8_digits(b: &[u8]) -> Option<u64> {
    let chunk = u64::from_le_bytes(b.try_into().ok()?);
    // Every byte must be 0x30..=0x39: high nibble 3, and adding 6 must not carry into it.
    let hi = chunk & 0xF0F0_F0F0_F0F0_F0F0;
    let carry = chunk.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0;
    if hi != 0x3030_3030_3030_3030 || carry != 0x3030_3030_3030_3030 {
        return None;
    }
    // Little-endian: the first digit is the lowest byte. Combine pairs, then quads, then halves.
    let v = chunk - 0x3030_3030_3030_3030;
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((v * 10_000 + (v >> 32)) & 0xFFFF_FFFF)
}

/// The general byte-by-byte parser; the reference the fast path is tested against.
pub fn parse_units_slow(s: &[u8]) -> Result<Units, NumError> {
    if s.is_empty() {
        return Err(NumError::Empty);
    }
    if s[0] == b'-' {
        return Err(NumError::Negative);
    }
    let mut int: u64 = 0;
    let mut i = 0;
    // Integer part. 19 digits can overflow u64 only at the very top; checked ops keep it exact.
    while i < s.len() {
        let d = s[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        int = int.checked_mul(10).and_then(|v| v.checked_add(d as u64)).ok_or(NumError::Overflow)?;
        i += 1;
    }
    if i == 0 {
        return Err(if s[0] == b'.' { NumError::MissingDigits } else { NumError::InvalidChar });
    }
    let mut frac: u64 = 0;
    let mut nfrac = 0usize;
    if i < s.len() {
        if s[i] != b'.' {
            return Err(NumError::InvalidChar);
        }
        i += 1;
        let start = i;
        while i < s.len() {
            let c = s[i];
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return Err(if c == b'.' { NumError::TwoDots } else { NumError::InvalidChar });
            }
            if i - start == SCALE_DIGITS as usize {
                return Err(NumError::TooManyDecimals);
            }
            frac = frac * 10 + d as u64;
            i += 1;
        }
        nfrac = i - start;
        if nfrac == 0 {
            return Err(NumError::MissingDigits);
        }
    }
    let frac_units = frac * POW10[SCALE_DIGITS as usize - nfrac] as u64;
    let total = int.checked_mul(SCALE as u64).and_then(|v| v.checked_add(frac_units)).ok_or(NumError::Overflow)?;
    if total > i64::MAX as u64 {
        return Err(NumError::Overflow);
    }
    Ok(total as i64)
}

/// Convenience for `&str` input.
#[inline]
pub fn parse_units_str(s: &str) -> Result<Units, NumError> {
    parse_units(s.as_bytes())
}

/// A symbol's tick size: the price step of its PRICE_FILTER, in 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickSize {
    units: i64,
}

/// A price that is not a whole number of ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffTick {
    /// The offending price, in 1e-8 units.
    pub price: Units,
}

impl TickSize {
    /// A tick of `units` 1e-8 units; `None` unless `1 <= units`.
    pub fn new(units: i64) -> Option<TickSize> {
        (units >= 1).then_some(TickSize { units })
    }

    /// Parses a PRICE_FILTER tickSize such as `"0.01000000"`. Zero (rule disabled) is refused: the
    /// ladder needs a step, and the caller should then infer one with [`infer_tick`].
    pub fn parse(s: &str) -> Result<Option<TickSize>, NumError> {
        parse_units_str(s).map(TickSize::new)
    }

    /// The tick in 1e-8 units.
    #[inline]
    pub fn units(self) -> i64 {
        self.units
    }

    /// How many decimals a price needs at this tick (0.01 -> 2, 1 -> 0, 0.00000001 -> 8); for a
    /// tick that is not a power of ten, enough decimals to show it exactly.
    pub fn decimals(self) -> u32 {
        let mut d = SCALE_DIGITS;
        let mut u = self.units;
        while d > 0 && u % 10 == 0 {
            u /= 10;
            d -= 1;
        }
        d
    }

    /// Price in units to ticks; an error when the price is not a multiple of the tick.
    #[inline]
    pub fn to_ticks(self, price: Units) -> Result<Ticks, OffTick> {
        // Ticks are powers of ten on every Binance spot symbol: dividing by a constant compiles
        // to a multiply and shift, several times cheaper than a runtime division per level.
        macro_rules! by {
            ($c:expr) => {
                if price % $c == 0 {
                    Ok(price / $c)
                } else {
                    Err(OffTick { price })
                }
            };
        }
        match self.units {
            1 => Ok(price),
            10 => by!(10),
            100 => by!(100),
            1_000 => by!(1_000),
            10_000 => by!(10_000),
            100_000 => by!(100_000),
            1_000_000 => by!(1_000_000),
            10_000_000 => by!(10_000_000),
            100_000_000 => by!(100_000_000),
            u => by!(u),
        }
    }

    /// Ticks back to units.
    #[inline]
    pub fn to_units(self, ticks: Ticks) -> Units {
        ticks * self.units
    }
}

/// Infers a tick size from observed prices: the largest power of ten (at most 1.0) that divides
/// every non-zero price. Used when replaying a recording that carries no exchangeInfo. With no
/// prices it answers the finest tick, 1e-8, which is always valid.
pub fn infer_tick<I: IntoIterator<Item = Units>>(prices: I) -> TickSize {
    let mut exp = SCALE_DIGITS as usize; // candidate tick 10^exp units, 10^8 units = 1.0
    let mut seen = false;
    for p in prices {
        if p == 0 {
            continue;
        }
        seen = true;
        while exp > 0 && p % POW10[exp] != 0 {
            exp -= 1;
        }
        if exp == 0 {
            break;
        }
    }
    TickSize { units: if seen { POW10[exp] } else { 1 } }
}

/// Appends `units` as a decimal with exactly `decimals` fractional digits (0..=8), truncating
/// digits beyond them. `push_units(buf, 6_183_763_000_000, 8)` appends `61837.63000000`.
pub fn push_units(out: &mut Vec<u8>, units: i64, decimals: u32) {
    let decimals = decimals.min(SCALE_DIGITS);
    let neg = units < 0;
    // i64::MIN has no positive i64; go through u64.
    let mag = units.unsigned_abs();
    let int = mag / SCALE as u64;
    let frac = mag % SCALE as u64;
    if neg {
        out.push(b'-');
    }
    push_u64(out, int);
    if decimals > 0 {
        out.push(b'.');
        let frac = frac / POW10[(SCALE_DIGITS - decimals) as usize] as u64;
        let mut digits = [b'0'; 8];
        let mut f = frac;
        for k in (0..decimals as usize).rev() {
            digits[k] = b'0' + (f % 10) as u8;
            f /= 10;
        }
        out.extend_from_slice(&digits[..decimals as usize]);
    }
}

/// Appends `units` with at least `min_decimals` and at most 8 fractional digits, dropping trailing
/// zeros beyond `min_decimals`: exact and short, for human output (`61837.635` for a mid).
pub fn push_units_trim(out: &mut Vec<u8>, units: i64, min_decimals: u32) {
    let mag = units.unsigned_abs();
    let mut decimals = SCALE_DIGITS;
    let mut frac = mag % SCALE as u64;
    while decimals > min_decimals && frac % 10 == 0 {
        frac /= 10;
        decimals -= 1;
    }
    push_units(out, units, decimals);
}

/// Appends an unsigned integer in decimal without allocating.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Appends a signed integer in decimal without allocating.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(units: i64, d: u32) -> String {
        let mut v = Vec::new();
        push_units(&mut v, units, d);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn parses_binance_strings() {
        assert_eq!(parse_units(b"61837.63000000"), Ok(6_183_763_000_000));
        assert_eq!(parse_units(b"0.00012000"), Ok(12_000));
        assert_eq!(parse_units(b"0.00000000"), Ok(0));
        assert_eq!(parse_units(b"0"), Ok(0));
        assert_eq!(parse_units(b"4"), Ok(400_000_000));
        assert_eq!(parse_units(b"0.001"), Ok(100_000));
        assert_eq!(parse_units(b"00012.5"), Ok(1_250_000_000));
        assert_eq!(parse_units(b"92233720368.54775807"), Ok(i64::MAX));
    }

    #[test]
    fn refuses_malformed_numbers() {
        assert_eq!(parse_units(b""), Err(NumError::Empty));
        assert_eq!(parse_units(b"1.2.3"), Err(NumError::TwoDots));
        assert_eq!(parse_units(b"1..2"), Err(NumError::TwoDots));
        assert_eq!(parse_units(b"12a.5"), Err(NumError::InvalidChar));
        assert_eq!(parse_units(b"1.5x"), Err(NumError::InvalidChar));
        assert_eq!(parse_units(b"abc"), Err(NumError::InvalidChar));
        assert_eq!(parse_units(b"1e5"), Err(NumError::InvalidChar));
        assert_eq!(parse_units(b" 1"), Err(NumError::InvalidChar));
        assert_eq!(parse_units(b"+1"), Err(NumError::InvalidChar));
        assert_eq!(parse_units(b"-1.0"), Err(NumError::Negative));
        assert_eq!(parse_units(b".5"), Err(NumError::MissingDigits));
        assert_eq!(parse_units(b"5."), Err(NumError::MissingDigits));
        assert_eq!(parse_units(b"0.000000001"), Err(NumError::TooManyDecimals));
        assert_eq!(parse_units(b"92233720368.54775808"), Err(NumError::Overflow));
        assert_eq!(parse_units(b"99999999999999999999999"), Err(NumError::Overflow));
        assert_eq!(parse_units(b"184467440737.09551616"), Err(NumError::Overflow));
    }

    #[test]
    fn formats_exactly_and_round_trips() {
        assert_eq!(fmt(6_183_763_000_000, 8), "61837.63000000");
        assert_eq!(fmt(6_183_763_000_000, 2), "61837.63");
        assert_eq!(fmt(12_000, 8), "0.00012000");
        assert_eq!(fmt(0, 8), "0.00000000");
        assert_eq!(fmt(0, 0), "0");
        assert_eq!(fmt(-1_000_000, 2), "-0.01");
        assert_eq!(fmt(i64::MAX, 8), "92233720368.54775807");
        assert_eq!(fmt(i64::MIN, 8), "-92233720368.54775808");
        for s in ["61837.63000000", "0.00000001", "92233720368.54775807", "1.00000000"] {
            let u = parse_units(s.as_bytes()).unwrap();
            assert_eq!(fmt(u, 8), s);
        }
        let mut v = Vec::new();
        push_units_trim(&mut v, 6_183_763_500_000, 2);
        assert_eq!(v, b"61837.635");
        v.clear();
        push_units_trim(&mut v, 6_183_700_000_000, 2);
        assert_eq!(v, b"61837.00");
    }

    #[test]
    fn ticks() {
        let t = TickSize::parse("0.01000000").unwrap().unwrap();
        assert_eq!(t.units(), 1_000_000);
        assert_eq!(t.decimals(), 2);
        assert_eq!(t.to_ticks(6_183_763_000_000), Ok(6_183_763));
        assert_eq!(t.to_ticks(6_183_763_500_000), Err(OffTick { price: 6_183_763_500_000 }));
        assert_eq!(t.to_units(6_183_763), 6_183_763_000_000);
        assert_eq!(TickSize::parse("0").unwrap(), None);
        assert_eq!(TickSize::new(1).unwrap().decimals(), 8);
        assert_eq!(TickSize::new(SCALE).unwrap().decimals(), 0);
        assert_eq!(TickSize::new(5_000_000).unwrap().decimals(), 2);
    }

    #[test]
    fn swar_digits() {
        assert_eq!(swar_8_digits(b"12345678"), Some(12_345_678));
        assert_eq!(swar_8_digits(b"00000000"), Some(0));
        assert_eq!(swar_8_digits(b"99999999"), Some(99_999_999));
        for bad in [b"1234567:", b"/2345678", b"1234 678", b"12345a78", b"\x00\x00\x00\x00\x00\x00\x00\x00"] {
            assert_eq!(swar_8_digits(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        /// The fast path and the byte loop agree on every input: random bytes from a
        /// decimal-ish alphabet, and well-formed 8-decimal strings of every integer length.
        #[test]
        fn fast_path_equals_byte_loop(s in "[0-9.a/:\\- ]{0,24}") {
            proptest::prop_assert_eq!(parse_units(s.as_bytes()), parse_units_slow(s.as_bytes()));
        }

        #[test]
        fn fast_path_equals_byte_loop_on_binance_shapes(int in 0u64..100_000_000_000_000, frac in 0u64..100_000_000, w in 1usize..15) {
            let s = format!("{:0w$}.{frac:08}", int);
            proptest::prop_assert_eq!(parse_units(s.as_bytes()), parse_units_slow(s.as_bytes()));
        }

        #[test]
        fn to_ticks_agrees_with_plain_division(p in 0i64..i64::MAX, e in 0u32..9) {
            let t = TickSize::new(10i64.pow(e)).unwrap();
            let want = if p % t.units() == 0 { Ok(p / t.units()) } else { Err(OffTick { price: p }) };
            proptest::prop_assert_eq!(t.to_ticks(p), want);
        }
    }

    #[test]
    fn infers_tick_from_prices() {
        let p = |s: &str| parse_units_str(s).unwrap();
        assert_eq!(infer_tick([p("61837.63"), p("61837.60"), p("61800")]).units(), 1_000_000);
        assert_eq!(infer_tick([p("2683.8"), p("2683.81")]).units(), 1_000_000);
        assert_eq!(infer_tick([p("5"), p("7")]).units(), SCALE);
        assert_eq!(infer_tick([p("0.00000003")]).units(), 1);
        assert_eq!(infer_tick(std::iter::empty()).units(), 1);
    }
}
