//! Fixed-point decimals for the simulator: prices and quantities as `i64` counts of 1e-8, parsed
//! from and written to Binance's decimal strings ("61837.63000000").
//!
//! This is deliberately the simulator's own tiny implementation, not the handler's: the reference
//! book is an oracle, so it must not share code with what it judges. It is not a general decimal
//! type: no arithmetic beyond what `i64` gives, no scientific notation, no negative prices.

/// Units per whole: every price and quantity in the simulator is an `i64` count of 1e-8.
pub const SCALE: i64 = 100_000_000;

/// Digits after the point that Binance spot writes for every price and quantity.
pub const DECIMALS: usize = 8;

/// Parses a non-negative decimal string into 1e-8 units.
///
/// Accepts `"61837.63"`, `"61837.63000000"`, `"0.00000001"`, `"5"`. Rejects an empty string, a
/// sign, more than 8 significant fractional digits (extra trailing zeros are fine), anything that
/// is not an ASCII digit or one point, and values that overflow `i64`. Returns `None` rather than
/// panicking because the input may come from a recording or a network peer.
pub fn parse_units(s: &str) -> Option<i64> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let (int_part, frac_part) = match bytes.iter().position(|&b| b == b'.') {
        Some(dot) => (&bytes[..dot], &bytes[dot + 1..]),
        None => (bytes, &bytes[..0]),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut whole: i64 = 0;
    for &b in int_part {
        if !b.is_ascii_digit() {
            return None;
        }
        whole = whole.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    let mut frac: i64 = 0;
    for (i, &b) in frac_part.iter().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        if i < DECIMALS {
            frac = frac * 10 + i64::from(b - b'0');
        } else if b != b'0' {
            // Finer than 1e-8 cannot be represented; refusing beats silently rounding.
            return None;
        }
    }
    for _ in frac_part.len()..DECIMALS {
        frac *= 10;
    }
    whole.checked_mul(SCALE)?.checked_add(frac)
}

/// Appends `units` (1e-8) to `out` as Binance writes it: always 8 fractional digits.
///
/// Negative values are written with a leading `-` (they never occur in a book, but a formatter
/// that cannot fail is simpler to use than one that can).
pub fn push_units(out: &mut String, units: i64) {
    let neg = units < 0;
    let abs = units.unsigned_abs();
    let scale = SCALE as u64;
    let whole = abs / scale;
    let frac = abs % scale;
    if neg {
        out.push('-');
    }
    // Manual digit writing keeps this allocation-free beyond `out` itself.
    let mut buf = [0u8; 20];
    let mut n = whole;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(b as char);
    }
    out.push('.');
    let mut digits = [b'0'; DECIMALS];
    let mut f = frac;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (f % 10) as u8;
        f /= 10;
    }
    for &b in &digits {
        out.push(b as char);
    }
}

/// Appends `units` with `dp` fractional digits (0..=8), as USDⓈ-M futures writes a price at its
/// contract's precision (`"64336.10"`) and a quantity at its step (`"0.003"`). A value that is
/// not exact at `dp` digits is written with all 8 instead: never rounded.
pub fn push_units_dp(out: &mut String, units: i64, dp: usize) {
    let dp = dp.min(DECIMALS);
    let unit = 10i64.pow((DECIMALS - dp) as u32);
    if dp == DECIMALS || units % unit != 0 {
        return push_units(out, units);
    }
    let start = out.len();
    push_units(out, units);
    // Drop the 8 - dp trailing zeros (and the point when dp is 0).
    let cut = DECIMALS - dp + usize::from(dp == 0);
    out.truncate(out.len() - cut);
    debug_assert!(out.len() > start);
}

/// The fractional digits of a tick or step (0.10 -> 1, 0.001 -> 3, 1 -> 0).
pub fn decimals_of(units: i64) -> usize {
    let mut d = DECIMALS;
    let mut u = units.max(1);
    while d > 0 && u % 10 == 0 {
        u /= 10;
        d -= 1;
    }
    d
}

/// Returns `units` as an 8-decimal string.
pub fn format_units(units: i64) -> String {
    let mut s = String::with_capacity(24);
    push_units(&mut s, units);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binance_strings() {
        assert_eq!(parse_units("61837.63000000"), Some(6_183_763_000_000));
        assert_eq!(parse_units("0.00000001"), Some(1));
        assert_eq!(parse_units("0.00000000"), Some(0));
        assert_eq!(parse_units("5"), Some(5 * SCALE));
        assert_eq!(parse_units("0.0024"), Some(240_000));
        assert_eq!(parse_units(".5"), Some(SCALE / 2));
        assert_eq!(parse_units("1.000000000"), Some(SCALE));
        assert_eq!(parse_units("92233720368.54775807"), Some(i64::MAX));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in
            ["", ".", "-1", "1e5", "1.2.3", "0.000000001", "92233720368.54775808", "99999999999999999999", " 1", "1,0"]
        {
            assert_eq!(parse_units(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_with_eight_decimals() {
        assert_eq!(format_units(6_183_763_000_000), "61837.63000000");
        assert_eq!(format_units(0), "0.00000000");
        assert_eq!(format_units(1), "0.00000001");
        assert_eq!(format_units(i64::MAX), "92233720368.54775807");
        assert_eq!(format_units(-150_000_000), "-1.50000000");
    }

    #[test]
    fn formats_at_a_precision_without_rounding() {
        let mut s = String::new();
        push_units_dp(&mut s, 6_433_610_000_000, 2);
        assert_eq!(s, "64336.10");
        s.clear();
        push_units_dp(&mut s, 300_000, 3);
        assert_eq!(s, "0.003");
        s.clear();
        push_units_dp(&mut s, 5 * SCALE, 0);
        assert_eq!(s, "5");
        s.clear();
        push_units_dp(&mut s, 300_001, 3);
        assert_eq!(s, "0.00300001", "not exact at 3 digits: all 8");
        assert_eq!((decimals_of(10_000_000), decimals_of(100_000), decimals_of(SCALE)), (1, 3, 0));
    }

    #[test]
    fn round_trips() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x >> 1) as i64;
            assert_eq!(parse_units(&format_units(v)), Some(v));
        }
    }
}
