//! A whole-market client for measuring the simulator: reads `exchangeInfo`, subscribes to
//! `@depth@100ms`, `@trade` and `@bookTicker` of every symbol over as many plain websocket
//! connections as Binance's 1024-stream limit needs (1000 streams each, or as many as the third
//! argument says), reads them all with one blocking thread per connection for the given time and
//! prints what arrived, and how each connection that ended early ended (a slow-consumer close is
//! the simulator's verdict on the client).
//!
//! `cargo run --release -p tickfeed-sim --example whole_market_client -- 127.0.0.1:9443 60 [STREAMS [CA.pem]]`
//!
//! With a CA file (the simulator's `--cert-out`) it speaks TLS (wss/https), as a handler would
//! against the simulator's default; without one, plain TCP. `STALL=K:AT_MS:FOR_MS` in the
//! environment makes connection K (0: the first, busiest symbols) stop reading for FOR_MS at AT_MS
//! after the start: how long a client may pause before the simulator drops it as a slow consumer.
//! Not a feed handler: it counts messages and bytes and parses nothing but exchangeInfo. Loopback
//! only.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Plain or TLS client stream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
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

/// Connects to `addr`, over TLS trusting only `ca` when given.
fn connect(addr: &str, ca: Option<&Arc<rustls::ClientConfig>>) -> Stream {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    match ca {
        None => Stream::Plain(tcp),
        Some(cfg) => {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string();
            let name = ServerName::try_from(host).expect("a server name");
            let conn = rustls::ClientConnection::new(cfg.clone(), name).expect("a TLS client");
            Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
        }
    }
}

/// A client config trusting only the CA in the PEM file at `path`.
fn tls_config(path: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(path).expect("the CA PEM")).expect("a CA certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn exchange_info(addr: &str, ca: Option<&Arc<rustls::ClientConfig>>) -> serde_json::Value {
    let mut s = connect(addr, ca);
    s.write_all(b"GET /api/v3/exchangeInfo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    // A TLS peer closing without close_notify is an "unexpected EOF": fine once the body is in.
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("exchangeInfo: {e}"),
        }
    }
    let text = String::from_utf8(raw).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(body).expect("exchangeInfo JSON")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().map_or("127.0.0.1:9443", String::as_str).to_string();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let per_conn: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000).clamp(1, 1024);
    let ca = args.get(3).map(|p| tls_config(p));
    let info = exchange_info(&addr, ca.as_ref());
    let names: Vec<String> = info["symbols"]
        .as_array()
        .expect("symbols")
        .iter()
        .map(|s| s["symbol"].as_str().unwrap().to_ascii_lowercase())
        .flat_map(|s| [format!("{s}@depth@100ms"), format!("{s}@trade"), format!("{s}@bookTicker")])
        .collect();
    let symbols = names.len() / 3;
    let msgs = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut threads = Vec::new();
    let stall: Option<(usize, u64, u64)> = std::env::var("STALL").ok().and_then(|v| {
        let p: Vec<u64> = v.split(':').filter_map(|x| x.parse().ok()).collect();
        (p.len() == 3).then(|| (p[0] as usize, p[1], p[2]))
    });
    let t_start = Instant::now();
    for (index, chunk) in names.chunks(per_conn).enumerate() {
        let scheme = if ca.is_some() { "wss" } else { "ws" };
        let url = format!("{scheme}://{addr}/stream?streams={}", chunk.join("/"));
        let (mut ws, _) = tungstenite::client(url.as_str(), connect(&addr, ca.as_ref())).expect("websocket upgrade");
        let (msgs, bytes) = (msgs.clone(), bytes.clone());
        threads.push(std::thread::spawn(move || {
            let mut stalled = false;
            while Instant::now() < deadline {
                if let Some((k, at, ms)) = stall {
                    if k == index && !stalled && t_start.elapsed() >= Duration::from_millis(at) {
                        stalled = true;
                        eprintln!("conn {index}: not reading for {ms} ms");
                        std::thread::sleep(Duration::from_millis(ms));
                    }
                }
                match ws.read() {
                    Ok(tungstenite::Message::Text(t)) => {
                        msgs.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
                    }
                    Ok(tungstenite::Message::Close(f)) => {
                        eprintln!("connection closed by the server: {f:?}");
                        return;
                    }
                    Ok(_) => {}
                    // The read timeout only bounds the wait past the deadline: a quiet
                    // connection (the last, with few symbols) may see nothing for seconds.
                    Err(tungstenite::Error::Io(e))
                        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(e) => {
                        eprintln!("connection ended: {e}");
                        return;
                    }
                }
            }
        }));
    }
    println!("{symbols} symbols, {} streams, {} connections, {secs} s", names.len(), threads.len());
    let start = Instant::now();
    for t in threads {
        let _ = t.join();
    }
    let took = start.elapsed().as_secs_f64();
    let (m, b) = (msgs.load(Ordering::Relaxed), bytes.load(Ordering::Relaxed));
    println!("{m} messages ({:.0}/s), {:.1} MB ({:.2} MB/s)", m as f64 / took, b as f64 / 1e6, b as f64 / 1e6 / took);
}
