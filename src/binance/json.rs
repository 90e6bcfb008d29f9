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
        }
    }
}

impl std::error::Error for DecodeError {}

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

/// The input as `&str`, validated once. sonic-rs hands out a skipped value (the borrowed level
/// arrays, a `LazyValue`) as `&str` without checking its UTF-8 (a debug assertion only; undefined
/// behaviour in release), and `Deserializer::end` does not run its final UTF-8 check: so every
/// decoder validates here and gives sonic-rs a `&str`, which it then does not validate again.
pub(crate) fn utf8(data: &[u8]) -> Result<&str, ()> {
    std::str::from_utf8(data).map_err(|_| ())
}

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
