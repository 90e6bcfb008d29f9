//! A whole-market client for measuring the simulator: reads `exchangeInfo`, subscribes to
//! `@depth@100ms`, `@trade` and `@bookTicker` of every symbol over as many plain websocket
//! connections as Binance's 1024-stream limit needs (1000 streams each), reads them all with one
//! blocking thread per connection for the given time and prints what arrived.
//!
//! `cargo run --release -p tickfeed-sim --example whole_market_client -- 127.0.0.1:9443 60`
//!
//! Not a feed handler: it counts messages and bytes and parses nothing but exchangeInfo. Loopback
//! and plain TCP only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn exchange_info(addr: &str) -> serde_json::Value {
    let mut s = TcpStream::connect(addr).expect("connect for exchangeInfo");
    s.write_all(b"GET /api/v3/exchangeInfo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(body).expect("exchangeInfo JSON")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().map_or("127.0.0.1:9443", String::as_str).to_string();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let info = exchange_info(&addr);
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
    for chunk in names.chunks(1000) {
        let url = format!("ws://{addr}/stream?streams={}", chunk.join("/"));
        let tcp = TcpStream::connect(&addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let (mut ws, _) = tungstenite::client(url.as_str(), tcp).expect("websocket upgrade");
        let (msgs, bytes) = (msgs.clone(), bytes.clone());
        threads.push(std::thread::spawn(move || {
            while Instant::now() < deadline {
                match ws.read() {
                    Ok(tungstenite::Message::Text(t)) => {
                        msgs.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
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
