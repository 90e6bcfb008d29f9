//! The websocket decoder fed any byte stream, split anywhere: it never panics, never reads past
//! what it was given, and every byte is either consumed or left for the next call.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickfeed::ws::{Decoder, Limits};

fuzz_target!(|data: &[u8]| {
    // The first byte chooses where the stream is split into reads.
    let Some((&split, bytes)) = data.split_first() else { return };
    let step = usize::from(split).max(1);
    let mut dec = Decoder::new(Limits { max_frame: 1 << 16, max_message: 1 << 16 });
    let mut buf: Vec<u8> = Vec::new();
    for chunk in bytes.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&buf) {
                Ok(d) => {
                    let (consumed, event) = (d.consumed, d.event.is_some());
                    assert!(consumed <= buf.len());
                    buf.drain(..consumed);
                    if !event {
                        break;
                    }
                }
                // Any error is fatal for a connection: stop as the handler does.
                Err(_) => return,
            }
        }
    }
});
