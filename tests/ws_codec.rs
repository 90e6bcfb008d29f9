//! Integration tests for `tickfeed::ws`: the codec against a real tungstenite server over loopback
//! TCP, and the no-allocation claims of the hot path, measured with a counting allocator.
//!
//! The server side is tungstenite (an independent RFC 6455 implementation) on a thread; the client
//! side is this test driving the sans-IO codec over a blocking `std::net::TcpStream`, the way the
//! event loop will over mio. Every socket has a timeout, so a bug fails the test instead of hanging
//! it. This file does not test TLS or mio; those belong to the network module's tests.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use tickfeed::ws::{Decoder, Encoder, Endpoint, Event, Handshake, HandshakeStatus, Limits, WsError};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::{Bytes, Message};

const IO_TIMEOUT: Duration = Duration::from_secs(2);

// ---- Counting allocator: per thread, so parallel tests and the server thread do not interfere.

#[global_allocator]
static A: util::alloc::Counting = util::alloc::Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    util::alloc::allocations_in(f).1
}

/// An unmasked server frame (FIN set), as tungstenite's server writes it.
fn server_frame(f: Frame) -> Vec<u8> {
    let mut out = Vec::new();
    f.format(&mut out).unwrap();
    out
}

fn text_frame(payload: &[u8], opcode: Data, fin: bool) -> Frame {
    Frame::message(payload.to_vec(), OpCode::Data(opcode), fin)
}

#[test]
fn decoding_unfragmented_frames_allocates_nothing() {
    // The counter is live (otherwise every "allocated nothing" below would pass vacuously).
    assert!(allocations_in(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8)))) >= 1);
    let msg = br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000000,"s":"BTCUSDT","U":1,"u":2,"b":[["37000.01","0.5"]],"a":[]}}"#;
    let mut stream = Vec::new();
    for _ in 0..100 {
        stream.extend(server_frame(text_frame(msg, Data::Text, true)));
    }
    stream.extend(server_frame(Frame::ping(b"hb".to_vec())));
    stream.extend(server_frame(text_frame(&[b'x'; 70_000], Data::Text, true)));
    let mut dec = Decoder::new(Limits::default());
    let mut enc = Encoder::new(1);
    let mut out = Vec::with_capacity(1024);
    let mut events = 0;
    let n = allocations_in(|| {
        let mut pos = 0;
        loop {
            let d = dec.decode(&stream[pos..]).unwrap();
            let Some(event) = d.event else { break };
            enc.reply_to(&event, &mut out).unwrap();
            events += 1;
            pos += d.consumed;
        }
        assert_eq!(pos, stream.len());
    });
    assert_eq!(events, 102);
    assert_eq!(n, 0, "decode (and the pong into a reserved buffer) allocated");
}

#[test]
fn reassembling_fragmented_messages_allocates_nothing_after_construction() {
    let mut stream = Vec::new();
    for _ in 0..10 {
        stream.extend(server_frame(text_frame(b"{\"a\":", Data::Text, false)));
        stream.extend(server_frame(Frame::ping(b"mid".to_vec())));
        stream.extend(server_frame(text_frame(&[b'7'; 5000], Data::Continue, false)));
        stream.extend(server_frame(text_frame(b"}", Data::Continue, true)));
    }
    let mut dec = Decoder::new(Limits { max_frame: 8192, max_message: 16384 });
    let mut texts = 0;
    let n = allocations_in(|| {
        let mut pos = 0;
        loop {
            let d = dec.decode(&stream[pos..]).unwrap();
            match d.event {
                Some(Event::Text(t)) => {
                    assert_eq!(t.len(), 5006);
                    texts += 1;
                }
                Some(_) => {}
                None => break,
            }
            pos += d.consumed;
        }
    });
    assert_eq!(texts, 10);
    assert_eq!(n, 0, "reassembly allocated after construction");
}

/// What the tungstenite server observed from our client.
#[derive(Debug)]
struct ServerSaw {
    subscribe: String,
    pong: Vec<u8>,
    close_reply: Option<(u16, String)>,
}

fn configure(sock: &TcpStream) {
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    sock.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    sock.set_nodelay(true).unwrap();
}

/// The server: read our SUBSCRIBE, send a text, a 64-bit-length text and a text in three frames
/// with a ping between the first two, wait for the pong, close, wait for our close reply.
fn serve(listener: TcpListener) -> Result<ServerSaw, tungstenite::Error> {
    let (sock, _) = listener.accept()?;
    configure(&sock);
    let mut ws = tungstenite::accept(sock).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => unreachable!("blocking socket"),
    })?;
    let subscribe = match ws.read()? {
        Message::Text(t) => t.to_string(),
        other => panic!("expected SUBSCRIBE, got {other:?}"),
    };
    ws.send(Message::text(r#"{"result":null,"id":1}"#))?;
    ws.send(Message::text("t".repeat(70_000)))?;
    // A message the server fragments itself: raw frames through tungstenite's writer.
    ws.send(Message::Frame(text_frame(b"{\"part\":", Data::Text, false)))?;
    ws.send(Message::Ping(Bytes::from_static(b"mid-message ping")))?;
    ws.send(Message::Frame(text_frame(b"\"two\",", Data::Continue, false)))?;
    ws.send(Message::Frame(text_frame(b"\"n\":3}", Data::Continue, true)))?;
    let pong = match ws.read()? {
        Message::Pong(p) => p.to_vec(),
        other => panic!("expected a pong, got {other:?}"),
    };
    ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() }))?;
    let mut close_reply = None;
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => close_reply = frame.map(|f| (u16::from(f.code), f.reason.to_string())),
            Ok(other) => panic!("expected the close reply, got {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(ServerSaw { subscribe, pong, close_reply })
}

/// Reads once into `buf`; `false` at EOF.
fn read_some(sock: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match sock.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("client read: {e}"),
        }
    }
}

/// Connects and completes the handshake; returns the socket and the bytes read past the header.
fn connect(port: u16, path: &str) -> Result<(TcpStream, Vec<u8>), WsError> {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    configure(&sock);
    let mut hs = Handshake::new(*b"tickfeed-nonce-1");
    let mut out = Vec::new();
    let endpoint = Endpoint { host: "127.0.0.1", port, tls: false, path };
    hs.write_request(&endpoint, &mut out)?;
    sock.write_all(&out).unwrap();
    let mut rbuf = Vec::new();
    loop {
        if !read_some(&mut sock, &mut rbuf) {
            return Err(hs.eof(&rbuf));
        }
        if let HandshakeStatus::Done { consumed } = hs.parse_response(&rbuf)? {
            rbuf.drain(..consumed);
            return Ok((sock, rbuf));
        }
    }
}

#[test]
fn against_tungstenite_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || serve(listener));

    let (mut sock, mut rbuf) = connect(port, "/stream?streams=btcusdt@depth@100ms/btcusdt@trade").unwrap();
    let mut dec = Decoder::new(Limits::default());
    let mut enc = Encoder::new(0x5eed);
    let mut out = Vec::new();
    enc.text(r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#, &mut out).unwrap();
    sock.write_all(&out).unwrap();
    out.clear();

    // The event loop: decode everything buffered, answer, write, read more; until EOF.
    let mut events: Vec<String> = Vec::new();
    loop {
        loop {
            let d = dec.decode(&rbuf).unwrap();
            let (consumed, more) = (d.consumed, d.event.is_some());
            if let Some(event) = d.event {
                enc.reply_to(&event, &mut out).unwrap();
                events.push(match event {
                    Event::Text(t) if t.len() > 100 => format!("text {} bytes", t.len()),
                    other => format!("{other:?}"),
                });
            }
            rbuf.drain(..consumed);
            if !more {
                break;
            }
        }
        if !out.is_empty() {
            sock.write_all(&out).unwrap();
            out.clear();
        }
        if !read_some(&mut sock, &mut rbuf) {
            break;
        }
    }
    let saw = server.join().expect("server thread").expect("server error");

    assert_eq!(
        events,
        [
            r#"Text("{\"result\":null,\"id\":1}")"#,
            "text 70000 bytes",
            "Ping([109, 105, 100, 45, 109, 101, 115, 115, 97, 103, 101, 32, 112, 105, 110, 103])",
            r#"Text("{\"part\":\"two\",\"n\":3}")"#,
            r#"Close { code: Some(1000), reason: "bye" }"#,
        ]
    );
    assert!(dec.is_closed() && enc.is_closed());
    assert!(rbuf.is_empty());
    assert_eq!(saw.subscribe, r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}"#);
    assert_eq!(saw.pong, b"mid-message ping");
    assert_eq!(saw.close_reply, Some((1000, String::new())));
}

#[test]
fn tungstenite_refusal_is_reported_with_status_and_body() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        configure(&sock);
        // The callback's type is tungstenite's, large Err and all.
        #[allow(clippy::result_large_err)]
        let refuse = |_: &Request, _: Response| -> Result<Response, ErrorResponse> {
            let body = r#"{"code":-1121,"msg":"Invalid symbol."}"#;
            Err(tungstenite::http::Response::builder()
                .status(404)
                .header("Content-Type", "application/json")
                .header("Content-Length", body.len())
                .body(Some(body.to_string()))
                .unwrap())
        };
        // tungstenite reports its own refusal as an error; the client's view is what we test.
        let _ = tungstenite::accept_hdr(sock, refuse);
    });
    let err = connect(port, "/ws/nosuchsymbol@trade").unwrap_err();
    server.join().unwrap();
    assert_eq!(
        err.to_string(),
        r#"websocket handshake refused: HTTP/1.1 404 Not Found: {"code":-1121,"msg":"Invalid symbol."}"#
    );
    assert!(err.is_fatal());
}
