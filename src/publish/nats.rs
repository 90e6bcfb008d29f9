//! `--publish nats://HOST:PORT`: the records to a NATS server, on subjects
//! `tickfeed.<venue>.<SYMBOL>.<kind>`, from a helper thread.
//!
//! The hot thread only copies each frame's records into a lock-free SPSC ring (rtrb); the helper
//! thread takes them out, names their subjects, renders JSON if asked, and publishes with
//! async-nats on a single-threaded tokio runtime. A slow or dead server fills the ring, never the
//! hot thread: a frame that does not fit is dropped whole and counted, and once the ring has room
//! again every synced book is published as a snapshot, so subscribers recover without waiting
//! for the periodic round. async-nats reconnects by itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Format, PublishConfig, PublishCounters, Target};
use crate::wire::{self, Kind, Record};

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    sent: AtomicU64,
    connects: AtomicU64,
    errors: AtomicU64,
}

/// The hot thread's end.
pub struct NatsPublisher {
    ring: rtrb::Producer<u8>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    pub(super) counters: PublishCounters,
    every_ns: i64,
    next_round_ns: Option<i64>,
    dropped_since_room: bool,
}

/// The subject of a record: `tickfeed.<venue>.<SYMBOL>.<kind>` (a symbol not named yet is
/// `_<id>`).
pub fn subject(out: &mut String, venue: &str, name: Option<&str>, id: u32, kind: Kind) {
    use std::fmt::Write;
    out.clear();
    out.push_str("tickfeed.");
    out.push_str(venue);
    out.push('.');
    match name {
        Some(n) => out.push_str(n),
        None => {
            let _ = write!(out, "_{id}");
        }
    }
    out.push('.');
    out.push_str(kind.as_str());
}

impl NatsPublisher {
    /// Starts the helper thread; it connects (and reconnects) in the background.
    pub fn open(cfg: &PublishConfig) -> Result<NatsPublisher, String> {
        let Target::Nats { host, port } = &cfg.target else {
            return Err("not a NATS target".into());
        };
        let addr = format!("{host}:{port}");
        let (ring, rx) = rtrb::RingBuffer::new(cfg.ring_bytes.max(wire::MAX_RECORD_LEN));
        let shared = Arc::new(Shared::default());
        let (venue, format) = (cfg.venue, cfg.format);
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tickfeed-nats".into())
            .spawn(move || run(addr, venue, format, rx, sh))
            .map_err(|e| format!("--publish: cannot start the NATS thread: {e}"))?;
        Ok(NatsPublisher {
            ring,
            shared,
            thread: Some(thread),
            counters: PublishCounters::default(),
            every_ns: i64::try_from(cfg.snapshot_every.as_nanos()).unwrap_or(i64::MAX).max(1),
            next_round_ns: None,
            dropped_since_room: false,
        })
    }

    /// Copies one frame's records into the ring, or drops them whole if it is full.
    pub fn send(&mut self, records: &[u8]) {
        self.send_counted(records, super::count_records(records));
    }

    /// [`NatsPublisher::send`] of `n` records already counted.
    pub fn send_counted(&mut self, records: &[u8], n: u64) {
        if records.is_empty() {
            return;
        }
        if self.ring.push_entire_slice(records).is_ok() {
            self.counters.records += n;
            self.counters.bytes += records.len() as u64;
        } else {
            self.counters.dropped += n;
            self.dropped_since_room = true;
        }
    }

    /// The periodic snapshot round is due, or the ring has room again after drops.
    pub fn wants_snapshots(&mut self, now_ns: i64) -> bool {
        if self.dropped_since_room && self.ring.slots() >= self.ring.buffer().capacity() / 2 {
            self.dropped_since_room = false;
            self.next_round_ns = Some(now_ns.saturating_add(self.every_ns));
            return true;
        }
        match self.next_round_ns {
            None => {
                self.next_round_ns = Some(now_ns.saturating_add(self.every_ns));
                false
            }
            Some(t) if now_ns >= t => {
                self.next_round_ns = Some(now_ns.saturating_add(self.every_ns));
                true
            }
            Some(_) => false,
        }
    }

    /// The counters, the helper thread's included.
    pub fn counters(&self) -> PublishCounters {
        PublishCounters {
            sent: self.shared.sent.load(Ordering::Relaxed),
            connects: self.shared.connects.load(Ordering::Relaxed),
            errors: self.shared.errors.load(Ordering::Relaxed),
            ..self.counters
        }
    }

    /// Lets the helper thread publish what is in the ring, for up to `deadline`, and stops it.
    pub fn close(mut self, deadline: Duration) -> PublishCounters {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let until = std::time::Instant::now() + deadline + Duration::from_millis(500);
            while !t.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        self.counters()
    }
}

impl Drop for NatsPublisher {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// How long the thread keeps publishing what is left after the stop, at most.
const DRAIN: Duration = Duration::from_secs(2);

fn run(addr: String, venue: &'static str, format: Format, mut rx: rtrb::Consumer<u8>, sh: Arc<Shared>) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(_) => {
            sh.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    rt.block_on(async move {
        let sh2 = sh.clone();
        let opts = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .event_callback(move |ev| {
                let sh = sh2.clone();
                async move {
                    match ev {
                        async_nats::Event::Connected => {
                            sh.connects.fetch_add(1, Ordering::Relaxed);
                        }
                        async_nats::Event::Disconnected => {}
                        _ => {
                            sh.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        let client = match opts.connect(addr.as_str()).await {
            Ok(c) => c,
            Err(_) => {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut names: Vec<Option<(String, u32)>> = Vec::new();
        let mut subj = String::with_capacity(64);
        let mut json = Vec::with_capacity(1 << 16);
        let mut stop_at: Option<tokio::time::Instant> = None;
        let mut pending = 0u64;
        let mut last_flush = tokio::time::Instant::now();
        loop {
            let avail = rx.slots();
            // What was published is counted as sent once the server has answered a flush (a
            // publish only queues it in the client): when the ring is empty, and every 50 ms.
            if pending > 0 && (avail == 0 || last_flush.elapsed() >= Duration::from_millis(50)) {
                last_flush = tokio::time::Instant::now();
                match tokio::time::timeout(Duration::from_secs(1), client.flush()).await {
                    Ok(Ok(())) => {
                        sh.sent.fetch_add(pending, Ordering::Relaxed);
                        pending = 0;
                    }
                    _ => {
                        sh.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if avail == 0 {
                if sh.stop.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
                continue;
            }
            if let Ok(chunk) = rx.read_chunk(avail) {
                let (a, b) = chunk.as_slices();
                buf.extend_from_slice(a);
                buf.extend_from_slice(b);
                chunk.commit_all();
            }
            let mut at = 0;
            while let Ok((h, r)) = wire::decode(&buf[at..]) {
                let rec = &buf[at..at + h.len as usize];
                at += h.len as usize;
                if let Record::Symbol(s) = &r {
                    let i = h.symbol as usize;
                    // Ids are the publisher's dense book indices; bounded all the same.
                    if i < 1 << 20 {
                        if i >= names.len() {
                            names.resize(i + 1, None);
                        }
                        names[i] = Some((s.name.to_string(), u32::from(s.price_decimals)));
                    }
                }
                let named = names.get(h.symbol as usize).and_then(|n| n.as_ref());
                subject(&mut subj, venue, named.map(|n| n.0.as_str()), h.symbol, h.kind);
                let payload = match format {
                    Format::Binary => bytes::Bytes::copy_from_slice(rec),
                    Format::Json => {
                        json.clear();
                        let (name, dec) = named.map_or(("", 8), |n| (n.0.as_str(), n.1));
                        if wire::json::render(&mut json, name, dec, &h, &r).is_err() {
                            sh.errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        bytes::Bytes::copy_from_slice(&json)
                    }
                };
                // A dead server fills async-nats' queue and this waits, which fills the ring
                // and the hot thread drops; the wait is cut in steps to see the stop.
                loop {
                    match tokio::time::timeout(
                        Duration::from_millis(100),
                        client.publish(subj.clone(), payload.clone()),
                    )
                    .await
                    {
                        Ok(Ok(())) => {
                            pending += 1;
                            break;
                        }
                        Ok(Err(_)) => {
                            sh.errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(_) => {
                            if sh.stop.load(Ordering::Relaxed) {
                                let t = *stop_at.get_or_insert_with(|| tokio::time::Instant::now() + DRAIN);
                                if tokio::time::Instant::now() >= t {
                                    return;
                                }
                            }
                        }
                    }
                }
            }
            buf.drain(..at);
            if sh.stop.load(Ordering::Relaxed) {
                let t = *stop_at.get_or_insert_with(|| tokio::time::Instant::now() + DRAIN);
                if tokio::time::Instant::now() >= t {
                    break;
                }
            }
        }
        if pending > 0 && matches!(tokio::time::timeout(DRAIN, client.flush()).await, Ok(Ok(()))) {
            sh.sent.fetch_add(pending, Ordering::Relaxed);
        }
    });
}

/// A subscriber's end (`tickfeed subscribe --from nats://`): the binary records of `symbols`
/// (all when empty) handed to the caller through a ring from a helper thread.
pub struct NatsSubscriber {
    ring: rtrb::Consumer<u8>,
    shared: Arc<Shared>,
    lost: Arc<AtomicU64>,
    _thread: JoinHandle<()>,
}

impl NatsSubscriber {
    /// Subscribes to `tickfeed.<venue>.<SYMBOL>.>` for each symbol (or `tickfeed.<venue>.>`).
    pub fn open(host: &str, port: u16, venue: &str, symbols: &[String]) -> Result<NatsSubscriber, String> {
        let addr = format!("{host}:{port}");
        let subjects: Vec<String> = if symbols.is_empty() {
            vec![format!("tickfeed.{venue}.>")]
        } else {
            symbols.iter().map(|s| format!("tickfeed.{venue}.{}.>", s.to_ascii_uppercase())).collect()
        };
        let (mut tx, ring) = rtrb::RingBuffer::new(16 << 20);
        let shared = Arc::new(Shared::default());
        let lost = Arc::new(AtomicU64::new(0));
        let (sh, lo) = (shared.clone(), lost.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name("tickfeed-nats-sub".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    let _ = ready_tx.send(Err("cannot start a tokio runtime".into()));
                    return;
                };
                rt.block_on(async move {
                    use futures_util::StreamExt;
                    let client = match async_nats::ConnectOptions::new()
                        .connection_timeout(Duration::from_secs(5))
                        .connect(addr.as_str())
                        .await
                    {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("--from nats://{addr}: {e}")));
                            return;
                        }
                    };
                    let mut subs = Vec::new();
                    for s in subjects {
                        match client.subscribe(s.clone()).await {
                            Ok(sub) => subs.push(sub),
                            Err(e) => {
                                let _ = ready_tx.send(Err(format!("--from nats://{addr}: subscribe {s}: {e}")));
                                return;
                            }
                        }
                    }
                    if client.flush().await.is_err() {
                        let _ = ready_tx.send(Err(format!("--from nats://{addr}: the server did not answer")));
                        return;
                    }
                    sh.connects.fetch_add(1, Ordering::Relaxed);
                    let _ = ready_tx.send(Ok(()));
                    let mut all = futures_util::stream::select_all(subs);
                    while let Some(m) = all.next().await {
                        if sh.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        sh.sent.fetch_add(1, Ordering::Relaxed);
                        if tx.push_entire_slice(&m.payload).is_err() {
                            lo.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            })
            .map_err(|e| format!("--from: cannot start the NATS thread: {e}"))?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(NatsSubscriber { ring, shared, lost, _thread: thread }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("--from nats://{host}:{port}: no answer in 10 s")),
        }
    }

    /// Copies what has arrived into `buf` (appended): whole records, back to back.
    pub fn poll(&mut self, buf: &mut Vec<u8>) -> usize {
        let avail = self.ring.slots();
        if avail == 0 {
            return 0;
        }
        if let Ok(chunk) = self.ring.read_chunk(avail) {
            let (a, b) = chunk.as_slices();
            buf.extend_from_slice(a);
            buf.extend_from_slice(b);
            chunk.commit_all();
        }
        avail
    }

    /// Messages received, and messages the ring had no room for.
    pub fn received(&self) -> (u64, u64) {
        (self.shared.sent.load(Ordering::Relaxed), self.lost.load(Ordering::Relaxed))
    }
}

impl Drop for NatsSubscriber {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_server_fills_the_ring_and_the_hot_side_drops_whole_frames_without_waiting() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cfg = PublishConfig::new(Target::Nats { host: "127.0.0.1".into(), port });
        cfg.ring_bytes = 0; // the smallest ring: one record bound (1 MiB)
        let mut p = NatsPublisher::open(&cfg).unwrap();
        let mut enc = wire::Encoder::new();
        let mut frame = Vec::new();
        for i in 0..100 {
            enc.status(
                &mut frame,
                i,
                &wire::StatusRec { status: wire::SyncStatus::Synced, cause: 0, update_id: 1, recv_ns: 1 },
            );
        }
        let t = std::time::Instant::now();
        let frames = 3 * wire::MAX_RECORD_LEN / frame.len();
        for _ in 0..frames {
            p.send(&frame);
        }
        assert!(t.elapsed() < Duration::from_secs(1), "the hot side waited: {:?}", t.elapsed());
        let c = p.counters();
        assert_eq!(c.records + c.dropped, 100 * frames as u64);
        assert!(c.dropped > 0 && c.dropped % 100 == 0, "dropped whole frames: {c:?}");
        assert_eq!((c.sent, c.connects), (0, 0));
        // Room comes back only if the thread drains; the round after drops waits for it.
        let t = std::time::Instant::now();
        let c = p.close(Duration::from_millis(100));
        assert!(t.elapsed() < Duration::from_secs(4), "close took {:?}", t.elapsed());
        assert_eq!(c.sent, 0);
    }

    #[test]
    fn subjects_name_the_venue_symbol_and_kind() {
        let mut s = String::new();
        subject(&mut s, "spot", Some("BTCUSDT"), 0, Kind::Top);
        assert_eq!(s, "tickfeed.spot.BTCUSDT.top");
        subject(&mut s, "usdm", None, 7, Kind::Diff);
        assert_eq!(s, "tickfeed.usdm._7.diff");
    }
}
