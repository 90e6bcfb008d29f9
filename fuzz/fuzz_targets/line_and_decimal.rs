//! The recording line splitter and the decimal parser on any bytes: no panic, and the fast
//! decimal path agrees with the byte-by-byte one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickfeed::book::fixed::{parse_units, parse_units_slow};
use tickfeed::capture::split_line;

fuzz_target!(|data: &[u8]| {
    let _ = split_line(data);
    assert_eq!(parse_units(data).ok(), parse_units_slow(data).ok(), "{:?}", String::from_utf8_lossy(data));
});
