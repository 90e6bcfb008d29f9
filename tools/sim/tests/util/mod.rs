//! Shared test helpers: a tungstenite client over plain TCP or rustls (trusting the simulator's
//! CA), a raw HTTP/1.1 GET, and a client that keeps a local book by Binance's official procedure.
//!
//! Deliberately simple and independent of the simulator's internals: these helpers see only what
//! a real client sees on the wire. Every socket has a timeout so no test can hang.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tickfeed_sim::{decimal::parse_units, Book, Level, SimHandle};
use tungstenite::{Message, WebSocket};

/// Plain or TLS client stream.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b),
            Stream::Tls(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(b),
            Stream::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A rustls client config trusting only `ca_der`.
pub fn client_config(ca_der: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Opens a TCP (and TLS, when the sim uses it) stream to the simulator.
pub fn connect(sim: &SimHandle) -> Stream {
    let tcp = TcpStream::connect(sim.local_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_nodelay(true).unwrap();
    match sim.ca_der() {
        Some(ca) => {
            let name = ServerName::try_from("127.0.0.1").unwrap();
            let conn = rustls::ClientConnection::new(client_config(ca), name).unwrap();
            Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
        }
        None => Stream::Plain(tcp),
    }
}

/// Opens a websocket on `path_and_query` (e.g. "/stream?streams=btcusdt@trade").
pub fn ws(sim: &SimHandle, path_and_query: &str) -> WebSocket<Stream> {
    let url = format!("{}{}", sim.ws_base(), path_and_query);
    let (ws, resp) = tungstenite::client(url.as_str(), connect(sim)).unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    ws
}

/// Reads the next text message (answering pings as tungstenite does), failing after `within`.
pub fn next_text(ws: &mut WebSocket<Stream>, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        assert!(Instant::now() < deadline, "no text message within {within:?}");
        match ws.read().expect("websocket read") {
            Message::Text(t) => return t.as_str().to_string(),
            _ => continue,
        }
    }
}

/// A REST answer.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("bad JSON {e}: {}", self.body))
    }
}

/// `GET path_and_query` with `Connection: close`.
pub fn get(sim: &SimHandle, path_and_query: &str) -> HttpResponse {
    let mut s = connect(sim);
    let req = format!("GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut raw = Vec::new();
    // A TLS peer closing without close_notify is an "unexpected EOF": fine once the body is in.
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .expect("content-length");
    assert_eq!(body.len(), len, "Content-Length matches the body");
    HttpResponse { status, headers, body: body.to_string() }
}

/// A depth diff as a client parses it.
#[derive(Debug, Clone)]
pub struct ClientDiff {
    pub first: u64,
    pub last: u64,
    pub bids: Vec<(i64, i64)>,
    pub asks: Vec<(i64, i64)>,
}

fn levels(v: &Value) -> Vec<(i64, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let l = l.as_array().unwrap();
            (parse_units(l[0].as_str().unwrap()).unwrap(), parse_units(l[1].as_str().unwrap()).unwrap())
        })
        .collect()
}

/// Parses a depthUpdate payload (the `data` of a combined message, or a raw one).
pub fn parse_diff(data: &Value) -> ClientDiff {
    assert_eq!(data["e"], "depthUpdate");
    ClientDiff {
        first: data["U"].as_u64().unwrap(),
        last: data["u"].as_u64().unwrap(),
        bids: levels(&data["b"]),
        asks: levels(&data["a"]),
    }
}

/// Binance's official local-book procedure, as a client would run it.
#[derive(Debug, Default)]
pub struct LocalBook {
    pub bids: BTreeMap<i64, i64>,
    pub asks: BTreeMap<i64, i64>,
    pub id: u64,
    pub synced: bool,
    buffer: Vec<ClientDiff>,
    pub snapshots: u32,
    pub gaps: u32,
    pub applied: u64,
}

impl LocalBook {
    /// Feeds one diff; fetches a snapshot over REST when needed.
    pub fn on_diff(&mut self, sim: &SimHandle, symbol: &str, d: ClientDiff) {
        if !self.synced {
            self.buffer.push(d);
            self.try_sync(sim, symbol);
            return;
        }
        if d.last <= self.id {
            return;
        }
        if d.first > self.id + 1 {
            // Gap: discard and restart from the beginning.
            self.gaps += 1;
            self.synced = false;
            self.buffer.clear();
            self.buffer.push(d);
            self.try_sync(sim, symbol);
            return;
        }
        self.apply(&d);
    }

    fn try_sync(&mut self, sim: &SimHandle, symbol: &str) {
        let first_u = self.buffer[0].first;
        let snap = loop {
            let r = get(sim, &format!("/api/v3/depth?symbol={symbol}&limit=5000"));
            assert_eq!(r.status, 200, "{}", r.body);
            self.snapshots += 1;
            let v = r.json();
            if v["lastUpdateId"].as_u64().unwrap() >= first_u {
                break v;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let id = snap["lastUpdateId"].as_u64().unwrap();
        self.bids = levels(&snap["bids"]).into_iter().collect();
        self.asks = levels(&snap["asks"]).into_iter().collect();
        self.id = id;
        self.synced = true;
        let buffered: Vec<_> = std::mem::take(&mut self.buffer).into_iter().filter(|d| d.last > id).collect();
        let mut first = true;
        for d in buffered {
            if first {
                assert!(d.first <= id + 1 && id < d.last, "first applied diff bridges the snapshot");
                first = false;
            }
            if d.first > self.id + 1 {
                self.gaps += 1;
                self.synced = false;
                self.buffer.push(d);
                return;
            }
            self.apply(&d);
        }
    }

    fn apply(&mut self, d: &ClientDiff) {
        for &(p, q) in &d.bids {
            if q == 0 {
                self.bids.remove(&p);
            } else {
                self.bids.insert(p, q);
            }
        }
        for &(p, q) in &d.asks {
            if q == 0 {
                self.asks.remove(&p);
            } else {
                self.asks.insert(p, q);
            }
        }
        self.id = d.last;
        self.applied += 1;
    }

    /// The local book in the simulator's `Book` shape.
    pub fn to_book(&self, symbol: &str) -> Book {
        Book {
            symbol: symbol.to_string(),
            last_update_id: self.id,
            bids: self.bids.iter().rev().map(|(&price, &qty)| Level { price, qty }).collect(),
            asks: self.asks.iter().map(|(&price, &qty)| Level { price, qty }).collect(),
        }
    }
}

/// Where the shared Binance recordings live: `$TICKFEED_DATA`, else `../../../shared/data/binance`
/// from this crate (the shared folder sits beside the checkout).
pub fn data_dir() -> std::path::PathBuf {
    match std::env::var_os("TICKFEED_DATA") {
        Some(d) => d.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/binance"),
    }
}

/// A websocket frame as it came off the wire.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// A hand-rolled websocket client that sees individual frames and never answers pings by itself,
/// so tests can misbehave on purpose (no pong, wrong pong) and observe fragmentation.
/// Sends a websocket upgrade request for `path_and_query` and reads the answer's head (status line
/// and headers, up to the blank line); the stream is left at the body or the first frame.
pub fn send_upgrade(sim: &SimHandle, path_and_query: &str) -> (Stream, String) {
    let mut s = connect(sim);
    let req = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    (s, String::from_utf8(head).unwrap())
}

pub struct RawWs {
    pub s: Stream,
}

impl RawWs {
    /// Handshakes on `path_and_query`.
    pub fn open(sim: &SimHandle, path_and_query: &str) -> RawWs {
        let (s, head) = send_upgrade(sim, path_and_query);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
        RawWs { s }
    }

    /// Reads one frame.
    pub fn read_frame(&mut self) -> io::Result<RawFrame> {
        let mut h = [0u8; 2];
        self.s.read_exact(&mut h)?;
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0f;
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        let len = match h[1] & 0x7f {
            126 => {
                let mut e = [0u8; 2];
                self.s.read_exact(&mut e)?;
                u16::from_be_bytes(e) as usize
            }
            127 => {
                let mut e = [0u8; 8];
                self.s.read_exact(&mut e)?;
                u64::from_be_bytes(e) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.s.read_exact(&mut payload)?;
        Ok(RawFrame { fin, opcode, payload })
    }

    /// Sends one masked frame (clients must mask).
    pub fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        assert!(payload.len() < 126);
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f)?;
        self.s.flush()
    }
}

/// Polls `cond` every 10 ms until it holds or `within` passes.
pub fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}
