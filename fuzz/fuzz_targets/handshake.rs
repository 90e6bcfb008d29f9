//! The upgrade response parser fed any bytes, in any number of reads: no panic, and an answer
//! (done, need more, or an error) for every prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickfeed::ws::Handshake;

fuzz_target!(|data: &[u8]| {
    let mut hs = Handshake::new([7; 16]);
    for end in [data.len() / 3, data.len() / 2, data.len()] {
        if hs.parse_response(&data[..end]).is_err() {
            return;
        }
    }
});
