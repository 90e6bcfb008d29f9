//! Depth levels `[["price","qty"],...]`: the strict scanner for the exact bytes Binance writes,
//! with the general serde visitor as its fallback, both pushing integer levels into reused buffers.
//!
//! It does not know which message the levels belong to (diff or snapshot) or what a book does
//! with them.

use super::json::{Dec, ErrSlot};
use crate::book::fixed::{self, NumError, Units};
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use std::fmt;

/// One depth level as it came off the wire: price and quantity in 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLevel {
    /// Price in 1e-8 units.
    pub price: Units,
    /// Quantity in 1e-8 units; 0 removes the level.
    pub qty: Units,
}

/// Reused storage for the levels of one depth message or snapshot. Cleared by each decode; its
/// capacity stays, so after warm-up decoding does not allocate.
#[derive(Debug, Default)]
pub struct LevelBuf {
    /// Bid levels in wire order.
    pub bids: Vec<RawLevel>,
    /// Ask levels in wire order.
    pub asks: Vec<RawLevel>,
}

impl LevelBuf {
    /// Buffers with room for `n` levels per side.
    pub fn with_capacity(n: usize) -> LevelBuf {
        LevelBuf { bids: Vec::with_capacity(n), asks: Vec::with_capacity(n) }
    }
}

/// `[["price","qty"], ...]` pushed into a vector.
pub(crate) struct Levels<'v, 's> {
    pub(crate) out: &'v mut Vec<RawLevel>,
    pub(crate) err: &'s mut ErrSlot,
}

impl<'de> DeserializeSeed<'de> for Levels<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // sonic-rs validates the array and hands it over as a borrowed raw slice; the common
        // Binance shape is then read by a tight scanner, anything else by the serde visitor.
        let raw: sonic_rs::LazyValue<'de> = de::Deserialize::deserialize(d)?;
        let cow = raw.as_raw_cow();
        let bytes = cow.as_bytes();
        let start = self.out.len();
        match scan_levels(bytes, self.out) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(self.err.num::<D::Error>(Err(e)).unwrap_err()),
            None => {
                self.out.truncate(start);
                // `bytes` is a slice of input already validated as UTF-8 (see `utf8`).
                let mut de = sonic_rs::Deserializer::from_slice(bytes);
                de.deserialize_seq(self).map_err(|_| de::Error::custom("levels"))
            }
        }
    }
}

/// Reads `[["price","qty"],...]` written exactly as Binance writes it (no whitespace, no
/// escapes) into `out`. `None` when the bytes have any other shape (the caller then uses the
/// general parser, which gives the same levels); `Some(Err)` for a malformed number.
pub(crate) fn scan_levels(b: &[u8], out: &mut Vec<RawLevel>) -> Option<Result<(), NumError>> {
    let n = b.len();
    if n < 2 || b[0] != b'[' {
        return None;
    }
    if b[1] == b']' {
        return (n == 2).then_some(Ok(()));
    }
    let mut i = 1;
    loop {
        if b.get(i..i + 2)? != b"[\"" {
            return None;
        }
        let (price, p1) = match quoted_units(b, i + 2)? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        if b.get(p1..p1 + 3)? != b"\",\"" {
            return None;
        }
        let (qty, q1) = match quoted_units(b, p1 + 3)? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        if b.get(q1 + 1)? != &b']' {
            return None;
        }
        out.push(RawLevel { price, qty });
        i = q1 + 2;
        match b.get(i)? {
            b',' => i += 1,
            b']' if i + 1 == n => return Some(Ok(())),
            _ => return None,
        }
    }
}

/// Parses the decimal whose string content starts at `b[from]`, returning it and the index of
/// its closing quote. The Binance shape (digits, '.', 8 digits, '"') is parsed in the same pass
/// that finds the quote; anything else finds the quote first and takes the general parser.
/// `None` when there is no closing quote or an escape comes first.
#[inline]
pub(crate) fn quoted_units(b: &[u8], from: usize) -> Option<Result<(Units, usize), NumError>> {
    let mut j = from;
    let mut int: u64 = 0;
    while j < b.len() && j - from < 12 {
        let d = b[j].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        int = int * 10 + d as u64;
        j += 1;
    }
    if j > from && j - from <= 11 && b.get(j) == Some(&b'.') && b.get(j + 9) == Some(&b'"') {
        if let Some(frac) = b.get(j + 1..j + 9).and_then(fixed::swar_8_digits) {
            let total = int * fixed::SCALE as u64 + frac;
            return Some(if total > i64::MAX as u64 { Err(NumError::Overflow) } else { Ok((total as i64, j + 9)) });
        }
    }
    let rel = b.get(from..)?.iter().position(|&c| c == b'"' || c == b'\\')?;
    let end = from + rel;
    if b[end] != b'"' {
        return None;
    }
    Some(fixed::parse_units(&b[from..end]).map(|v| (v, end)))
}

impl<'de> Visitor<'de> for Levels<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of [price, qty] pairs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(()) = seq.next_element_seed(LevelSeed { out: &mut *self.out, err: &mut *self.err })? {}
        Ok(())
    }
}

struct LevelSeed<'v, 's> {
    out: &'v mut Vec<RawLevel>,
    err: &'s mut ErrSlot,
}

impl<'de> DeserializeSeed<'de> for LevelSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LevelSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [price, qty] pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let price = seq.next_element_seed(Dec(self.err))?.ok_or_else(|| de::Error::invalid_length(0, &"2"))?;
        let qty = seq.next_element_seed(Dec(self.err))?.ok_or_else(|| de::Error::invalid_length(1, &"2"))?;
        // Binance sends exactly two strings; anything after them is tolerated and skipped.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.out.push(RawLevel { price, qty });
        Ok(())
    }
}
