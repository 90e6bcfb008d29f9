//! Property tests of the websocket decoder and the upgrade-response parser: the proptest twins of
//! the cargo-fuzz targets `ws_decoder` and `handshake`, so the suite checks what the fuzzer does on
//! every change.
//!
//! - Any bytes, split into reads anywhere: the decoder never panics and never consumes more than
//!   it was given; the parser answers every prefix without panicking.
//! - Valid input, split anywhere: server frames written by tungstenite (an independent RFC 6455
//!   implementation), fragmented and interleaved with control frames, decode to the same
//!   messages in the same order however the bytes are cut; a valid 101 response is accepted
//!   at the same length from any split, and the frames after it are left untouched.

use proptest::prelude::*;
use tickfeed::ws::{Decoder, Event, Handshake, HandshakeStatus, Limits};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;

const LIMITS: Limits = Limits { max_frame: 1 << 16, max_message: 1 << 16 };

/// What a decoded event says, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close,
}

/// Feeds `bytes` to a decoder in reads of the given sizes (cycled), as a connection would: append,
/// decode until no more events, drop what was consumed. Stops at the first error.
fn decode_in_reads(bytes: &[u8], reads: &[usize]) -> (Vec<Got>, Option<String>) {
    let mut dec = Decoder::new(LIMITS);
    let (mut buf, mut got, mut at) = (Vec::new(), Vec::new(), 0usize);
    let mut sizes = reads.iter().copied().cycle();
    while at < bytes.len() {
        let n = sizes.next().unwrap_or(1).max(1).min(bytes.len() - at);
        buf.extend_from_slice(&bytes[at..at + n]);
        at += n;
        loop {
            let before = buf.len();
            match dec.decode(&buf) {
                Ok(d) => {
                    assert!(d.consumed <= before, "consumed {} of {before} bytes", d.consumed);
                    let event = d.event.map(|e| match e {
                        Event::Text(t) => Got::Text(t.to_owned()),
                        Event::Binary(b) => Got::Binary(b.to_vec()),
                        Event::Ping(p) => Got::Ping(p.to_vec()),
                        Event::Pong(p) => Got::Pong(p.to_vec()),
                        Event::Close { .. } => Got::Close,
                    });
                    let consumed = d.consumed;
                    buf.drain(..consumed);
                    match event {
                        Some(e) => got.push(e),
                        None => break,
                    }
                }
                Err(e) => return (got, Some(e.to_string())),
            }
        }
    }
    (got, None)
}

/// One message a server sends, and how it is cut into frames.
#[derive(Debug, Clone)]
enum Msg {
    /// A text message in `parts` fragments, with a ping between the first two when `ping`.
    Text {
        text: String,
        parts: usize,
        ping: bool,
    },
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        6 => ("[ -~é€😀]{0,300}", 1usize..4, any::<bool>()).prop_map(|(text, parts, ping)| Msg::Text { text, parts, ping }),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Msg::Binary),
        1 => prop::collection::vec(any::<u8>(), 0..125).prop_map(Msg::Ping),
        1 => prop::collection::vec(any::<u8>(), 0..125).prop_map(Msg::Pong),
    ]
}

fn write(f: Frame, out: &mut Vec<u8>) {
    f.format(out).unwrap();
}

/// The server's bytes for `msgs`, and the events a correct decoder reports for them.
fn server_bytes(msgs: &[Msg]) -> (Vec<u8>, Vec<Got>) {
    let (mut out, mut want) = (Vec::new(), Vec::new());
    for m in msgs {
        match m {
            Msg::Text { text, parts, ping } => {
                // Cut on char boundaries into `parts` pieces (some may be empty).
                let bytes = text.as_bytes();
                let mut cuts: Vec<usize> = (1..*parts)
                    .map(|i| i * bytes.len() / parts)
                    .map(|c| (0..=c).rev().find(|&c| text.is_char_boundary(c)).unwrap())
                    .collect();
                cuts.insert(0, 0);
                cuts.push(bytes.len());
                for (i, w) in cuts.windows(2).enumerate() {
                    let op = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
                    let fin = i + 2 == cuts.len();
                    write(Frame::message(bytes[w[0]..w[1]].to_vec(), op, fin), &mut out);
                    if i == 0 && !fin && *ping {
                        write(Frame::ping(b"mid".to_vec()), &mut out);
                        want.push(Got::Ping(b"mid".to_vec()));
                    }
                }
                want.push(Got::Text(text.clone()));
            }
            Msg::Binary(b) => {
                write(Frame::message(b.clone(), OpCode::Data(Data::Binary), true), &mut out);
                want.push(Got::Binary(b.clone()));
            }
            Msg::Ping(p) => {
                write(Frame::ping(p.clone()), &mut out);
                want.push(Got::Ping(p.clone()));
            }
            Msg::Pong(p) => {
                write(Frame::pong(p.clone()), &mut out);
                want.push(Got::Pong(p.clone()));
            }
        }
    }
    (out, want)
}

/// A valid 101 answer to `hs`'s request, with a few extra headers.
fn accept_response(hs: &Handshake, extra: &[(String, String)]) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(hs.key().as_bytes());
    let mut r = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n");
    for (k, v) in extra {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The `ws_decoder` fuzz target's property.
    #[test]
    fn the_decoder_survives_any_bytes_split_anywhere(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        reads in prop::collection::vec(1usize..64, 1..8),
    ) {
        let _ = decode_in_reads(&bytes, &reads);
    }

    /// Random bytes rarely look like frames; these start as valid frames and are then damaged
    /// in one place, so the decoder's error paths are reached too.
    #[test]
    fn the_decoder_survives_damaged_frames(
        msgs in prop::collection::vec(msg(), 1..6),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        reads in prop::collection::vec(1usize..64, 1..8),
    ) {
        let (mut bytes, _) = server_bytes(&msgs);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = decode_in_reads(&bytes, &reads);
    }

    #[test]
    fn valid_frames_decode_to_the_same_messages_however_they_are_split(
        msgs in prop::collection::vec(msg(), 1..8),
        reads in prop::collection::vec(1usize..200, 1..8),
    ) {
        let (bytes, want) = server_bytes(&msgs);
        let (got, err) = decode_in_reads(&bytes, &reads);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, want);
    }

    /// The `handshake` fuzz target's property: any bytes, in growing reads, get an answer.
    #[test]
    fn the_handshake_parser_answers_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4)) {
        let mut hs = Handshake::new([7; 16]);
        let mut ends: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        ends.sort_unstable();
        ends.push(bytes.len());
        for end in ends {
            if hs.parse_response(&bytes[..end]).is_err() {
                break;
            }
        }
    }

    #[test]
    fn a_valid_upgrade_is_accepted_at_its_length_from_any_split(
        extra in prop::collection::vec(("X-[A-Za-z]{1,12}", "[ -~]{0,40}"), 0..6),
        tail in prop::collection::vec(any::<u8>(), 0..64),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut hs = Handshake::new([7; 16]);
        let head = accept_response(&hs, &extra);
        let mut all = head.clone();
        all.extend_from_slice(&tail);
        let cut = cut.index(head.len());
        // Any proper prefix of the header needs more; the whole answer is accepted at the header's
        // length, whatever follows it.
        prop_assert_eq!(hs.parse_response(&all[..cut]).map_err(|e| e.to_string()), Ok(HandshakeStatus::NeedMore));
        match hs.parse_response(&all) {
            Ok(HandshakeStatus::Done { consumed, .. }) => prop_assert_eq!(consumed, head.len()),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
