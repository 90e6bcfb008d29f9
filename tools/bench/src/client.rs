//! What the floor and usual clients share: their command line (they run as `e2e client ...`, a
//! process of their own like tickfeed), the TLS configuration trusting the simulator's CA, the
//! latency recorder, the report they write, and the stop signal (the harness closes their stdin).
//!
//! Not here: anything a client does per message; see [`crate::floor`] and [`crate::usual`].

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Which of the two own clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnClient {
    /// [`crate::floor`].
    Floor,
    /// [`crate::usual`].
    Usual,
}

/// How a client runs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The simulator's address.
    pub addr: SocketAddr,
    /// Request path: `/stream?streams=...&timeUnit=MICROSECOND`.
    pub path: String,
    /// DER of the CA to trust.
    pub ca_der: Vec<u8>,
    /// Spin on a non-blocking socket (true) or block in the kernel.
    pub busy: bool,
    /// Pin the client's thread to this core.
    pub core: Option<usize>,
    /// End after this many market messages.
    pub max_events: Option<u64>,
}

/// Set once the harness asks the client to stop; the socket is shut down at the same moment, so a
/// blocked read returns.
#[derive(Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// True once stopping.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Stops: sets the flag and shuts `sock` down (both directions).
    pub fn stop(&self, sock: &TcpStream) {
        self.0.store(true, Ordering::Relaxed);
        let _ = sock.shutdown(std::net::Shutdown::Both);
    }
}

/// A latency summary in microseconds (the `--stats` shape of tickfeed's `latency_us`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Summary {
    /// Summary of `h`; zeros when empty.
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// What a floor or usual client writes when it ends.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientReport {
    /// Market messages (websocket text messages) received.
    pub events: u64,
    /// Receive wall clock minus `E`, µs, for every message that has an `E`.
    pub latency_us: Summary,
    /// Messages whose `E` was after the receive clock (not recorded).
    pub negative_latency: u64,
    /// Messages the client could not use (no JSON, a bad level...).
    pub bad_messages: u64,
    /// Bid and ask levels of the usual client's book at the end (0 for the floor).
    pub bids: u64,
    /// See `bids`.
    pub asks: u64,
    /// Why it ended: `max-events`, `stopped`, `closed` or an error.
    pub end: String,
}

/// Records latencies as tickfeed does: µs, 3 significant digits, up to an hour.
pub struct Recorder {
    hist: Histogram<u64>,
    negative: u64,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl Recorder {
    /// Empty.
    pub fn new() -> Recorder {
        // Bounds are constants that hdrhistogram accepts (low 1, high > 2 * low, 3 digits).
        let hist = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap());
        Recorder { hist, negative: 0 }
    }

    /// Records `recv_us - e_us`.
    #[inline]
    pub fn record(&mut self, recv_us: i64, e_us: i64) {
        let d = recv_us - e_us;
        if d < 0 {
            self.negative += 1;
        } else {
            self.hist.saturating_record(d as u64);
        }
    }

    /// The summary and the negative count.
    pub fn finish(&self) -> (Summary, u64) {
        (Summary::of(&self.hist), self.negative)
    }
}

/// The wall clock in µs since the Unix epoch (what `E` is in with `timeUnit=MICROSECOND`).
#[inline]
pub fn now_us() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(_) => 0,
    }
}

/// The digits after the first `"E":` in `payload`, if any.
#[inline]
pub fn event_time(payload: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"E\":";
    let i = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let mut v: i64 = 0;
    let mut n = 0;
    for &b in &payload[i..] {
        if !b.is_ascii_digit() || n == 18 {
            break;
        }
        v = v * 10 + i64::from(b - b'0');
        n += 1;
    }
    (n > 0).then_some(v)
}

/// A rustls client configuration trusting only `ca_der`.
pub fn tls_config(ca_der: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .map_err(|e| format!("the simulator's CA: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Pins the calling thread to `core`.
pub fn pin(core: Option<usize>) -> Result<(), String> {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            return Err(format!("cannot pin to core {id}"));
        }
    }
    Ok(())
}

/// `e2e client floor|usual` flags, parsed; a mistake is one line.
pub fn parse_client_args(args: &[String]) -> Result<(OwnClient, ClientConfig, std::path::PathBuf), String> {
    let kind = match args.first().map(String::as_str) {
        Some("floor") => OwnClient::Floor,
        Some("usual") => OwnClient::Usual,
        other => return Err(format!("client: expected floor or usual, got {other:?}")),
    };
    let mut addr = None;
    let mut path = None;
    let mut ca = None;
    let mut out = None;
    let mut busy = false;
    let mut core = None;
    let mut max_events = None;
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("client: {flag} needs a value"));
        match flag.as_str() {
            "--addr" => addr = Some(value()?.parse::<SocketAddr>().map_err(|e| format!("client: --addr: {e}"))?),
            "--path" => path = Some(value()?.clone()),
            "--ca-der" => ca = Some(std::path::PathBuf::from(value()?)),
            "--out" => out = Some(std::path::PathBuf::from(value()?)),
            "--core" => core = Some(value()?.parse::<usize>().map_err(|e| format!("client: --core: {e}"))?),
            "--max-events" => {
                max_events = Some(value()?.parse::<u64>().map_err(|e| format!("client: --max-events: {e}"))?)
            }
            "--busy" => busy = true,
            "--block" => busy = false,
            other => return Err(format!("client: unknown flag {other}")),
        }
    }
    let addr = addr.ok_or("client: --addr is required")?;
    let path = path.ok_or("client: --path is required")?;
    let ca = ca.ok_or("client: --ca-der is required")?;
    let out = out.ok_or("client: --out is required")?;
    let ca_der = std::fs::read(&ca).map_err(|e| format!("client: {}: {e}", ca.display()))?;
    Ok((kind, ClientConfig { addr, path, ca_der, busy, core, max_events }, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_event_time() {
        assert_eq!(
            event_time(br#"{"stream":"x","data":{"e":"trade","E":1723161255343123,"s":"B"}}"#),
            Some(1723161255343123)
        );
        assert_eq!(event_time(br#"{"u":1,"s":"BTCUSDT","b":"1"}"#), None);
        assert_eq!(event_time(br#"{"E":}"#), None);
        assert_eq!(event_time(br#"{"E":"#), None);
    }

    #[test]
    fn recorder_counts_negatives_apart() {
        let mut r = Recorder::new();
        r.record(100, 90);
        r.record(100, 110);
        let (s, neg) = r.finish();
        assert_eq!((s.count, s.p50, neg), (1, 10, 1));
    }

    #[test]
    fn client_flags_are_checked() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(parse_client_args(&a(&["nope"])).is_err());
        assert!(parse_client_args(&a(&["floor", "--addr"])).unwrap_err().contains("needs a value"));
        assert!(parse_client_args(&a(&["floor", "--addr", "x"])).unwrap_err().contains("--addr"));
        assert!(parse_client_args(&a(&["usual", "--bogus"])).unwrap_err().contains("unknown flag"));
    }
}
