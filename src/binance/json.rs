//! The plumbing every Binance JSON decoder shares: the error type, the slot that carries a typed
//! cause out of a serde visitor, UTF-8 validation done once, and the decimal-string seed.
//!
//! It is not a JSON layer of its own: sonic-rs parses; this only adapts its serde interface to
//! tickfeed's typed errors and integer units.

use crate::book::fixed::{self, NumError, Units};
use serde::de::{self, DeserializeSeed};
use std::fmt;

/// Why a message could not be decoded. None of these is fatal to a connection: the message is
/// counted as bad and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not well-formed JSON, or a value of the wrong JSON type where a field was expected.
    Json,
    /// A price or quantity string that is not a valid decimal.
    Number(NumError),
    /// A required field is absent.
    MissingField(&'static str),
    /// The payload's event type is not the one its stream name promises.
    WrongEvent,
    /// The stream name is not one tickfeed understands.
    UnknownStream,
    /// The frame is none of: combined-stream event, raw event, control reply, REST depth body.
    UnknownShape,
    /// Arrays and objects nested deeper than [`MAX_DEPTH`]: refused before sonic-rs, whose
    /// value skipping recurses once per level, could overflow the stack on it.
    TooDeep,
    /// An SBE binary frame the SBE decoder refused.
    Sbe(crate::binance::sbe::SbeError),
    /// An SBE `TradesStreamEvent` with no trade, or with trade ids that do not increase.
    TradeIds,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json => f.write_str("malformed JSON"),
            DecodeError::Number(e) => write!(f, "bad decimal: {e}"),
            DecodeError::MissingField(k) => write!(f, "missing field \"{k}\""),
            DecodeError::WrongEvent => f.write_str("event type does not match its stream"),
            DecodeError::UnknownStream => f.write_str("unknown stream"),
            DecodeError::UnknownShape => f.write_str("unrecognised message"),
            DecodeError::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} levels"),
            DecodeError::Sbe(e) => write!(f, "bad SBE message: {e}"),
            DecodeError::TradeIds => f.write_str("SBE trades event with no trade or trade ids not increasing"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The deepest nesting of arrays and objects accepted in any message or body. Binance's nest at
/// most 4 deep (a depth level inside its array inside the event, a filter inside a symbol inside
/// exchangeInfo); sonic-rs skips a value (`IgnoredAny`, a raw `LazyValue`) by recursing once per
/// level, so an unbounded nesting is a stack overflow, not an error.
pub const MAX_DEPTH: usize = 32;

/// Refuses `data` when its arrays and objects nest deeper than [`MAX_DEPTH`]. Every decoder calls
/// it before giving the input to sonic-rs.
///
/// One pass over the bytes: `[`/`{` and `]`/`}` counted outside strings, a string skipped to its
/// closing quote (a backslash taking the byte after it along). It does not validate: unbalanced
/// or unterminated input passes here and is refused by the parser, which then recurses
/// [`MAX_DEPTH`] deep at most.
pub(crate) fn check_depth(data: &[u8]) -> Result<(), DecodeError> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&c) = data.get(i) {
        match c {
            b'"' => {
                i += 1;
                loop {
                    let Some(k) = data.get(i..).and_then(|r| r.iter().position(|&c| c == b'"' || c == b'\\')) else {
                        return Ok(());
                    };
                    i += k;
                    if data[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// A field-by-field error carrier: serde's error type cannot hold our typed errors, so visitors
/// record the precise cause here and the caller reads it back after the parse fails.
#[derive(Default)]
pub(crate) struct ErrSlot(pub(crate) Option<DecodeError>);

impl ErrSlot {
    pub(crate) fn num<E: de::Error>(&mut self, r: Result<Units, NumError>) -> Result<Units, E> {
        r.map_err(|e| {
            self.0 = Some(DecodeError::Number(e));
            E::custom("number")
        })
    }
}

pub(crate) fn finish<T>(r: Result<T, ()>, slot: ErrSlot) -> Result<T, DecodeError> {
    r.map_err(|()| slot.0.unwrap_or(DecodeError::Json))
}

/// Deserializes `T` from `data` with sonic-rs after the nesting check: the general form of every
/// decoder that does not use a seed (raw events, control replies, exchangeInfo, error bodies).
pub(crate) fn from_slice<'de, T: serde::Deserialize<'de>>(data: &'de [u8]) -> Result<T, DecodeError> {
    check_depth(data)?;
    sonic_rs::from_slice(data).map_err(|_| DecodeError::Json)
}

/// The input as `&str`, validated once. sonic-rs hands out a skipped value (the borrowed level
/// arrays, a `LazyValue`) as `&str` without checking its UTF-8 (a debug assertion only; undefined
/// behaviour in release), and `Deserializer::end` does not run its final UTF-8 check: so every
/// decoder validates here and gives sonic-rs a `&str`, which it then does not validate again.
pub(crate) fn utf8(data: &[u8]) -> Result<&str, ()> {
    std::str::from_utf8(data).map_err(|_| ())
}

/// Runs `seed` over `data`. The caller has checked the nesting ([`check_depth`]) first.
pub(crate) fn run_seed<'de, S: DeserializeSeed<'de>>(data: &'de [u8], seed: S) -> Result<S::Value, ()> {
    let mut de = sonic_rs::Deserializer::from_str(utf8(data)?);
    let v = seed.deserialize(&mut de).map_err(|_| ())?;
    de.end().map_err(|_| ())?;
    Ok(v)
}

/// A decimal string field, parsed straight to units.
pub(crate) struct Dec<'s>(pub(crate) &'s mut ErrSlot);
impl<'de> DeserializeSeed<'de> for Dec<'_> {
    type Value = Units;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Units, D::Error> {
        let s = <&'de str as de::Deserialize>::deserialize(d)?;
        self.0.num(fixed::parse_units(s.as_bytes()))
    }
}

pub(crate) fn missing<E: de::Error>(slot: &mut ErrSlot, field: &'static str) -> E {
    slot.0 = Some(DecodeError::MissingField(field));
    E::custom("missing")
}

pub(crate) fn wrong_event<E: de::Error>(slot: &mut ErrSlot) -> E {
    slot.0 = Some(DecodeError::WrongEvent);
    E::custom("event")
}

/// A map visitor is also its own seed: deserialize it as a JSON object.
macro_rules! map_seed {
    ($t:ty, $v:ty) => {
        impl<'de> DeserializeSeed<'de> for $t {
            type Value = $v;
            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
        }
    };
}
pub(crate) use map_seed;
