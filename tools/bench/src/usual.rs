//! The usual Rust approach, as a straightforward handler would be written: a current_thread tokio
//! runtime, tokio-rustls, tokio-tungstenite's `WebSocketStream`, one `serde_json::Value` per
//! message, and a `BTreeMap<price, qty>` per side for the book (decimals parsed with tickfeed's
//! parser, as in `benches/decode_apply.rs`'s baseline). Trades and bookTickers are parsed into
//! numbers too, so every message costs what it would in such a handler.
//!
//! Each message is stamped (one wall-clock read) when tokio-tungstenite yields it, before it is
//! parsed, which is where tickfeed and the floor stamp too: receive time, not book time.
//!
//! It does no snapshot sync (the book is the diffs applied from empty); what it measures is the
//! per-message path, not correctness. Block mode is tokio's normal epoll wait; busy mode adds a
//! task that yields for ever, which keeps the runtime polling epoll with a zero timeout.

use std::collections::BTreeMap;
use std::net::TcpStream;

use futures_util::StreamExt;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tickfeed::book::fixed::parse_units_str;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{now_us, pin, tls_config, ClientConfig, ClientReport, Recorder, Stop};

/// One book: price -> quantity per side, in 1e-8 units.
#[derive(Default)]
struct Book {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

/// Runs the usual client until it ends; `connected` gets a clone of the socket.
pub fn run(cfg: &ClientConfig, stop: &Stop, connected: impl FnOnce(TcpStream)) -> Result<ClientReport, String> {
    pin(cfg.core)?;
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(session(cfg, stop, connected))
}

async fn session(cfg: &ClientConfig, stop: &Stop, connected: impl FnOnce(TcpStream)) -> Result<ClientReport, String> {
    let tls = tls_config(&cfg.ca_der)?;
    let std_sock = TcpStream::connect(cfg.addr).map_err(|e| format!("connect {}: {e}", cfg.addr))?;
    let _ = std_sock.set_nodelay(true);
    std_sock.set_nonblocking(true).map_err(|e| format!("socket: {e}"))?;
    connected(std_sock.try_clone().map_err(|e| format!("socket: {e}"))?);
    let sock = tokio::net::TcpStream::from_std(std_sock).map_err(|e| format!("socket: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::from(cfg.addr.ip()), sock)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let url = format!("wss://{}{}", cfg.addr, cfg.path);
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.map_err(|e| format!("upgrade: {e}"))?;

    if cfg.busy {
        tokio::spawn(async {
            loop {
                tokio::task::yield_now().await;
            }
        });
    }

    let mut rec = Recorder::new();
    let mut report = ClientReport::default();
    let mut book = Book::default();
    let max = cfg.max_events.unwrap_or(u64::MAX);
    let end = loop {
        let msg = match ws.next().await {
            None => break if stop.is_set() { "stopped".to_string() } else { "end of stream".to_string() },
            Some(Err(e)) => break if stop.is_set() { "stopped".to_string() } else { format!("websocket: {e}") },
            Some(Ok(m)) => m,
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => break "closed".to_string(),
            _ => continue,
        };
        let recv = now_us();
        report.events += 1;
        if handle(text.as_str(), recv, &mut rec, &mut book).is_none() {
            report.bad_messages += 1;
        }
        if report.events >= max {
            break "max-events".to_string();
        }
    };
    let (latency_us, negative) = rec.finish();
    report.latency_us = latency_us;
    report.negative_latency = negative;
    report.bids = book.bids.len() as u64;
    report.asks = book.asks.len() as u64;
    report.end = end;
    Ok(report)
}

/// One combined-stream message: parsed, stamped, applied. `None` if it is not what Binance sends.
fn handle(text: &str, recv: i64, rec: &mut Recorder, book: &mut Book) -> Option<()> {
    let v: Value = serde_json::from_str(text).ok()?;
    let data = &v["data"];
    if let Some(e) = data["E"].as_i64() {
        rec.record(recv, e);
    }
    match data["e"].as_str() {
        Some("depthUpdate") => {
            for (key, side) in [("b", &mut book.bids), ("a", &mut book.asks)] {
                for lvl in data[key].as_array()? {
                    let p = parse_units_str(lvl[0].as_str()?).ok()?;
                    let q = parse_units_str(lvl[1].as_str()?).ok()?;
                    if q == 0 {
                        side.remove(&p);
                    } else {
                        side.insert(p, q);
                    }
                }
            }
            data["u"].as_u64()?;
        }
        Some("trade") => {
            std::hint::black_box(parse_units_str(data["p"].as_str()?).ok()?);
            std::hint::black_box(parse_units_str(data["q"].as_str()?).ok()?);
            data["t"].as_u64()?;
        }
        Some(_) => {}
        // bookTicker: no event type.
        None => {
            for key in ["b", "B", "a", "A"] {
                std::hint::black_box(parse_units_str(data[key].as_str()?).ok()?);
            }
            data["u"].as_u64()?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_depth_and_parses_the_rest() {
        let mut rec = Recorder::new();
        let mut book = Book::default();
        let d = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":100,"s":"BTCUSDT","U":1,"u":2,"b":[["1.5","2"],["1.4","0"]],"a":[["1.6","3"]]}}"#;
        assert!(handle(d, 150, &mut rec, &mut book).is_some());
        assert_eq!((book.bids.len(), book.asks.len()), (1, 1));
        let t = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":120,"s":"BTCUSDT","t":7,"p":"1.5","q":"0.1","T":119,"m":true}}"#;
        assert!(handle(t, 150, &mut rec, &mut book).is_some());
        let bt = r#"{"stream":"btcusdt@bookTicker","data":{"u":3,"s":"BTCUSDT","b":"1.5","B":"2","a":"1.6","A":"3"}}"#;
        assert!(handle(bt, 150, &mut rec, &mut book).is_some());
        assert!(handle("not json", 150, &mut rec, &mut book).is_none());
        let (s, _) = rec.finish();
        assert_eq!(s.count, 2);
    }
}
