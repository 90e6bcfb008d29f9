//! `--metrics ADDR`: Prometheus / OpenMetrics text at `http://ADDR/metrics`, from a helper thread.
//!
//! The hot thread never renders or serves anything. Once a second (its timer) it copies its
//! figures into a [`MetricsSnapshot`] behind a mutex it only ever `try_lock`s, so a scrape in
//! progress costs it one skipped copy, never a wait. The helper thread answers each scrape by
//! building a prometheus-client registry from the latest snapshot and encoding it.
//!
//! Bounds: one connection at a time, a request read of at most 8 KiB within 2 s, the symbol and
//! connection lists as long as the run's own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::output::stats::Stats;
use crate::pipeline::Pipeline;

/// The most request bytes read from a scraper.
pub const MAX_REQUEST: usize = 8 * 1024;

/// One symbol's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolMetrics {
    /// Uppercase symbol.
    pub name: String,
    /// The sync state's name (`synced`, `buffering`, ...).
    pub state: &'static str,
    /// Synced (1) or not (0).
    pub synced: bool,
    /// The book's update id.
    pub update_id: u64,
    /// Bid levels held.
    pub bids: u64,
    /// Ask levels held.
    pub asks: u64,
    /// Gaps seen.
    pub gaps: u64,
    /// Resyncs.
    pub resyncs: u64,
}

/// One connection slot's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionMetrics {
    /// Its label (`0`, `3A`, ...).
    pub label: String,
    /// Connected now.
    pub up: bool,
    /// Connections it opened.
    pub connections: u64,
    /// Frames it delivered.
    pub frames: u64,
}

/// Everything a scrape shows, as of the hot thread's last copy.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    /// `(name, help, value)` of each counter.
    pub counters: Vec<(&'static str, &'static str, u64)>,
    /// Per symbol.
    pub symbols: Vec<SymbolMetrics>,
    /// Per connection slot.
    pub connections: Vec<ConnectionMetrics>,
    /// Latency (receive - exchange time), µs: count and (quantile, value) pairs, max as 1.0.
    pub latency_us: (u64, [(f64, u64); 5]),
    /// In-process time, ns.
    pub process_ns: (u64, [(f64, u64); 5]),
    /// The latency histogram in Prometheus buckets (upper bounds [`LATENCY_BOUNDS_US`]).
    pub latency_buckets: Buckets,
    /// The in-process histogram in Prometheus buckets (upper bounds [`PROCESS_BOUNDS_NS`]).
    pub process_buckets: Buckets,
    /// Copies the hot thread made.
    pub updates: u64,
}

const QUANTILES: [f64; 5] = [0.5, 0.9, 0.99, 0.999, 1.0];

/// Upper bounds of the latency buckets, µs (then +Inf).
pub const LATENCY_BOUNDS_US: [u64; 11] = [50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000];
/// Upper bounds of the in-process buckets, ns (then +Inf).
pub const PROCESS_BOUNDS_NS: [u64; 11] =
    [500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000];

/// A histogram as Prometheus buckets: counts per bucket (not cumulative; the last is +Inf), and
/// the sum, which HdrHistogram does not keep: its mean x count, as close as its precision.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Buckets {
    /// Per bucket: values at or below `bounds[i]` and above the bound before; the last, above all.
    pub counts: [u64; 12],
    /// The sum of the values (mean x count).
    pub sum: f64,
    /// How many values.
    pub count: u64,
}

impl Buckets {
    fn fill(&mut self, h: &hdrhistogram::Histogram<u64>, bounds: &[u64; 11]) {
        let mut low = 0;
        for (i, &b) in bounds.iter().enumerate() {
            self.counts[i] = if b >= low { h.count_between(low, b) } else { 0 };
            low = b + 1;
        }
        let below: u64 = self.counts[..11].iter().sum();
        self.counts[11] = h.len().saturating_sub(below);
        self.count = h.len();
        self.sum = h.mean() * h.len() as f64;
    }
}

/// A [`Buckets`] with its bounds, encoded as an OpenMetrics histogram.
#[derive(Debug)]
struct HistogramMetric {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl HistogramMetric {
    fn new(b: &Buckets, bounds: &[u64; 11]) -> HistogramMetric {
        let mut buckets: Vec<(f64, u64)> = bounds.iter().zip(&b.counts).map(|(&u, &c)| (u as f64, c)).collect();
        buckets.push((f64::MAX, b.counts[11]));
        HistogramMetric { buckets, sum: b.sum, count: b.count }
    }
}

impl prometheus_client::encoding::EncodeMetric for HistogramMetric {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }
    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

fn quantiles(h: &hdrhistogram::Histogram<u64>) -> (u64, [(f64, u64); 5]) {
    let mut q = [(0.0, 0); 5];
    for (i, &p) in QUANTILES.iter().enumerate() {
        q[i] = (p, if p >= 1.0 { h.max() } else { h.value_at_quantile(p) });
    }
    (h.len(), q)
}

fn stats_counters(s: &Stats, out: &mut Vec<(&'static str, &'static str, u64)>) {
    out.extend_from_slice(&[
        ("events", "Market events processed", s.events),
        ("depth_updates", "Depth diffs processed", s.depth_updates),
        ("trades", "Trades processed", s.trades),
        ("agg_trades", "Aggregate trades processed", s.agg_trades),
        ("book_tickers", "Best bid/ask events processed", s.book_tickers),
        ("bad_messages", "Frames that could not be decoded or belong to no stream", s.bad_messages),
        ("reconnects", "Websocket connections opened after the first", s.reconnects),
        ("pings", "Pings received", s.pings),
        ("pongs", "Pongs sent", s.pongs),
        ("duplicates", "Events already processed from another connection", s.duplicates),
        ("server_shutdowns", "serverShutdown events received", s.server_shutdowns),
        ("trade_id_gaps", "Trade id gaps seen", s.trade_id_gaps),
    ]);
}

/// Copies the pipeline's figures into `snap` (reusing its vectors: no allocation once each
/// symbol's name is in). The event loop adds the connections and its own counters after it.
pub fn fill_from_pipeline(p: &Pipeline, snap: &mut MetricsSnapshot) {
    let s = p.stats();
    snap.counters.clear();
    stats_counters(s, &mut snap.counters);
    let (mut gaps, mut resyncs, mut checks, mut mismatches) = (0, 0, 0, 0);
    snap.symbols.resize_with(p.symbols().len(), SymbolMetrics::default);
    for (m, st) in snap.symbols.iter_mut().zip(p.symbols()) {
        let book = st.book();
        let c = book.counters();
        if m.name != st.symbol() {
            m.name = st.symbol().to_string();
        }
        m.state = book.state().as_str();
        m.synced = book.is_synced();
        m.update_id = book.last_update_id();
        m.bids = book.ladder().len(crate::book::ladder::Side::Bid) as u64;
        m.asks = book.ladder().len(crate::book::ladder::Side::Ask) as u64;
        m.gaps = c.gaps;
        m.resyncs = c.resyncs;
        gaps += c.gaps;
        resyncs += c.resyncs;
        let a = st.audit().counters();
        checks += a.checks;
        mismatches += a.mismatches;
    }
    snap.counters.extend_from_slice(&[
        ("gaps", "Sequence gaps detected", gaps),
        ("resyncs", "Snapshots taken after the first, for any reason", resyncs),
        ("book_ticker_checks", "Best bid/ask audit checks", checks),
        ("book_ticker_mismatches", "Best bid/ask audit mismatches", mismatches),
    ]);
    snap.latency_us = quantiles(&s.latency_us);
    snap.process_ns = quantiles(&s.process_ns);
    snap.latency_buckets.fill(&s.latency_us, &LATENCY_BOUNDS_US);
    snap.process_buckets.fill(&s.process_ns, &PROCESS_BOUNDS_NS);
    snap.updates += 1;
}

/// The OpenMetrics text of a snapshot.
pub fn render(snap: &MetricsSnapshot) -> String {
    let mut reg = Registry::with_prefix("tickfeed");
    for &(name, help, v) in &snap.counters {
        let c: Counter = Counter::default();
        c.inc_by(v);
        reg.register(name, help, c);
    }
    type Labels = Vec<(String, String)>;
    let synced: Family<Labels, Gauge> = Family::default();
    let state: Family<Labels, Gauge> = Family::default();
    let update_id: Family<Labels, Gauge> = Family::default();
    let levels: Family<Labels, Gauge> = Family::default();
    let sym_gaps: Family<Labels, Counter> = Family::default();
    let sym_resyncs: Family<Labels, Counter> = Family::default();
    for m in &snap.symbols {
        let l = vec![("symbol".to_string(), m.name.clone())];
        synced.get_or_create(&l).set(i64::from(m.synced));
        let mut ls = l.clone();
        ls.push(("state".into(), m.state.into()));
        state.get_or_create(&ls).set(1);
        update_id.get_or_create(&l).set(i64::try_from(m.update_id).unwrap_or(i64::MAX));
        for (side, n) in [("bid", m.bids), ("ask", m.asks)] {
            let mut ls = l.clone();
            ls.push(("side".into(), side.into()));
            levels.get_or_create(&ls).set(n as i64);
        }
        sym_gaps.get_or_create(&l).inc_by(m.gaps);
        sym_resyncs.get_or_create(&l).inc_by(m.resyncs);
    }
    reg.register("symbol_synced", "1 while the symbol's book is synced with the exchange", synced);
    reg.register("symbol_state", "The symbol's sync state (the label), always 1", state);
    reg.register("symbol_update_id", "The book's last update id", update_id);
    reg.register("symbol_levels", "Price levels the book holds, per side", levels);
    reg.register("symbol_gaps", "Sequence gaps seen on the symbol", sym_gaps);
    reg.register("symbol_resyncs", "Resyncs of the symbol's book", sym_resyncs);
    let up: Family<Labels, Gauge> = Family::default();
    let conns: Family<Labels, Counter> = Family::default();
    let frames: Family<Labels, Counter> = Family::default();
    for c in &snap.connections {
        let l = vec![("connection".to_string(), c.label.clone())];
        up.get_or_create(&l).set(i64::from(c.up));
        conns.get_or_create(&l).inc_by(c.connections);
        frames.get_or_create(&l).inc_by(c.frames);
    }
    reg.register("connection_up", "1 while the connection slot is connected", up);
    reg.register("connection_opened", "Connections the slot opened", conns);
    reg.register("connection_frames", "Frames the slot delivered", frames);
    for (name, help, (count, q)) in [
        (
            "latency_us",
            "Local receive time minus exchange event time, microseconds (quantile 1 is the max)",
            snap.latency_us,
        ),
        ("process_ns", "Bytes read to book updated, nanoseconds (quantile 1 is the max)", snap.process_ns),
    ] {
        let fam: Family<Labels, Gauge> = Family::default();
        for (p, v) in q {
            fam.get_or_create(&vec![("quantile".to_string(), p.to_string())]).set(i64::try_from(v).unwrap_or(i64::MAX));
        }
        reg.register(name, help, fam);
        let c: Counter = Counter::default();
        c.inc_by(count);
        reg.register(format!("{name}_samples"), "Samples in the histogram", c);
    }
    reg.register(
        "latency_histogram_us",
        "Local receive time minus exchange event time, microseconds",
        HistogramMetric::new(&snap.latency_buckets, &LATENCY_BOUNDS_US),
    );
    reg.register(
        "process_histogram_ns",
        "Bytes read to book updated, nanoseconds",
        HistogramMetric::new(&snap.process_buckets, &PROCESS_BOUNDS_NS),
    );
    let mut text = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail.
    let _ = encode(&mut text, &reg);
    text
}

/// The server's end: the shared snapshot, the thread.
pub struct MetricsServer {
    shared: Arc<Mutex<MetricsSnapshot>>,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
    /// Copies skipped because a scrape held the snapshot.
    pub skipped: u64,
}

impl MetricsServer {
    /// Binds `addr` (a bad or busy address is a one-line error here, at start) and starts the
    /// thread.
    pub fn start(addr: &str) -> Result<MetricsServer, String> {
        let listener = TcpListener::bind(addr).map_err(|e| format!("--metrics {addr}: cannot listen: {e}"))?;
        let local = listener.local_addr().map_err(|e| format!("--metrics {addr}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("--metrics {addr}: {e}"))?;
        let shared = Arc::new(Mutex::new(MetricsSnapshot::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let (sh, st, sc) = (shared.clone(), stop.clone(), scrapes.clone());
        let thread = std::thread::Builder::new()
            .name("tickfeed-metrics".into())
            .spawn(move || serve(listener, sh, st, sc))
            .map_err(|e| format!("--metrics: cannot start its thread: {e}"))?;
        Ok(MetricsServer { shared, stop, scrapes, addr: local, thread: Some(thread), skipped: 0 })
    }

    /// The address it listens on (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Scrapes answered.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::Relaxed)
    }

    /// Lets `f` update the snapshot, unless a scrape holds it (then nothing, counted).
    pub fn update(&mut self, f: impl FnOnce(&mut MetricsSnapshot)) {
        match self.shared.try_lock() {
            Ok(mut s) => f(&mut s),
            Err(_) => self.skipped += 1,
        }
    }

    /// Stops the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(listener: TcpListener, shared: Arc<Mutex<MetricsSnapshot>>, stop: Arc<AtomicBool>, scrapes: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                if answer(s, &shared).is_ok() {
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Reads the request head (bounded in size and time) and answers it.
fn answer(mut s: TcpStream, shared: &Mutex<MetricsSnapshot>) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut req = [0u8; MAX_REQUEST];
    let mut n = 0;
    while n < req.len() && !req[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut req[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let head = &req[..n];
    let line = head.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or(b"");
    let (status, ctype, body) = if line.starts_with(b"GET /metrics ") || line.starts_with(b"GET /metrics?") {
        // Clone under the lock, render outside it: the hot thread's try_lock is held off only
        // for the copy.
        let snap = match shared.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", render(&snap))
    } else if line.starts_with(b"GET ") {
        ("404 Not Found", "text/plain", "only /metrics is served\n".to_string())
    } else {
        ("405 Method Not Allowed", "text/plain", "GET /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn a_scrape_shows_the_last_snapshot_in_openmetrics_text() {
        let mut srv = MetricsServer::start("127.0.0.1:0").unwrap();
        let mut p = Pipeline::new(crate::pipeline::PipelineConfig::default(), &["BTCUSDT"]);
        p.stats_mut().events = 42;
        for us in [10, 90, 7_000] {
            p.stats_mut().record_latency_us(us);
        }
        srv.update(|s| {
            fill_from_pipeline(&p, s);
            s.connections.push(ConnectionMetrics { label: "0".into(), up: true, connections: 2, frames: 9 });
        });
        let text = get(srv.addr(), "/metrics");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("application/openmetrics-text"));
        assert!(text.contains("tickfeed_events_total 42"), "{text}");
        assert!(text.contains("tickfeed_symbol_synced{symbol=\"BTCUSDT\"} 0"), "{text}");
        assert!(text.contains("tickfeed_connection_frames_total{connection=\"0\"} 9"), "{text}");
        assert!(text.contains("tickfeed_latency_us{quantile=\"0.99\"}"), "{text}");
        assert!(text.contains("# TYPE tickfeed_latency_histogram_us histogram"), "{text}");
        assert!(text.contains("tickfeed_latency_histogram_us_bucket{le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("tickfeed_latency_histogram_us_bucket{le=\"100.0\"} 2"), "{text}");
        assert!(text.contains("tickfeed_latency_histogram_us_count 3"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"));
        assert!(get(srv.addr(), "/other").starts_with("HTTP/1.1 404"));
        // Counted once the answer is written, just after the client has read it.
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while srv.scrapes() < 2 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(srv.scrapes(), 2);
        srv.stop();
    }

    #[test]
    fn a_busy_address_is_a_one_line_error() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let e = MetricsServer::start(&addr).err().unwrap();
        assert!(e.starts_with("--metrics ") && !e.contains('\n'), "{e}");
        assert!(MetricsServer::start("not an address").is_err());
    }

    #[test]
    fn a_silent_scraper_is_cut_off_and_the_next_one_answered() {
        let srv = MetricsServer::start("127.0.0.1:0").unwrap();
        let _silent = TcpStream::connect(srv.addr()).unwrap();
        // The silent one holds the thread for at most its 2 s read timeout.
        let text = get(srv.addr(), "/metrics");
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        srv.stop();
    }
}
