//! Fan-out drivers: the records the pipeline's [`crate::wire::tap::Tap`] writes, carried to
//! other processes on this host (`--publish iceoryx2`, zero-copy shared memory) or to other
//! machines (`--publish nats://HOST:PORT`, through a NATS server).
//!
//! The event loop calls [`Publisher::send`] with the records of each frame, on the hot thread.
//! Neither transport can stall it: iceoryx2 writes into shared memory and overwrites a slow
//! subscriber's oldest sample; NATS goes through a lock-free ring to a helper thread, and a full
//! ring drops records, counted, and asks for fresh snapshots once there is room again.

pub mod ice;
pub mod nats;

use std::time::Duration;

/// Where records go (`--publish`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// iceoryx2 shared memory on this host: the service `tickfeed/<venue>/records`, or the one
    /// named after `iceoryx2:` (to keep runs apart).
    Iceoryx2 {
        /// `iceoryx2:NAME`'s name.
        service: Option<String>,
    },
    /// A NATS server.
    Nats {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

impl Target {
    /// Parses `iceoryx2`, `iceoryx2:SERVICE` or `nats://HOST:PORT` (port 4222 when left out).
    pub fn parse(s: &str) -> Result<Target, String> {
        if s == "iceoryx2" {
            return Ok(Target::Iceoryx2 { service: None });
        }
        if let Some(name) = s.strip_prefix("iceoryx2:") {
            let ok = !name.is_empty()
                && name.len() <= 200
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-.".contains(&b));
            if !ok {
                return Err(format!("--publish {s:?}: a service name is 1..200 of A-Z a-z 0-9 / _ - ."));
            }
            return Ok(Target::Iceoryx2 { service: Some(name.to_string()) });
        }
        let Some(rest) = s.strip_prefix("nats://") else {
            return Err(format!("--publish {s:?}: expected iceoryx2 or nats://HOST:PORT"));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => match p.parse::<u16>().ok().filter(|&p| p != 0) {
                Some(port) => (h, port),
                None => return Err(format!("--publish {s:?}: the port {p:?} is not a number in 1..65535")),
            },
            None => (rest, 4222),
        };
        if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!("--publish {s:?}: expected nats://HOST:PORT"));
        }
        Ok(Target::Nats { host: host.to_string(), port })
    }
}

/// What the payloads are (`--publish-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The records of `docs/wire.md`, as written.
    #[default]
    Binary,
    /// One JSON object per record (`src/wire/json.rs`).
    Json,
}

/// How a publisher is set up.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Where.
    pub target: Target,
    /// Payloads.
    pub format: Format,
    /// `spot` or `usdm`: the second part of NATS subjects and of the iceoryx2 service name.
    pub venue: &'static str,
    /// Bytes of the ring to the NATS thread.
    pub ring_bytes: usize,
    /// NATS: a snapshot of every synced book this often, for subscribers that join late.
    pub snapshot_every: Duration,
}

impl PublishConfig {
    /// The defaults for `target`.
    pub fn new(target: Target) -> PublishConfig {
        PublishConfig {
            target,
            format: Format::Binary,
            venue: "spot",
            ring_bytes: 8 << 20,
            snapshot_every: Duration::from_secs(5),
        }
    }
}

/// What a publisher has done, for `--stats` (`publish`) and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishCounters {
    /// Records handed over (to shared memory, or into the ring).
    pub records: u64,
    /// Bytes handed over.
    pub bytes: u64,
    /// Records dropped on the hot thread: the ring was full (NATS), or a sample could not be
    /// loaned (iceoryx2).
    pub dropped: u64,
    /// Records the NATS thread published and the server confirmed (a flush answered after them).
    pub sent: u64,
    /// Times the NATS link (re)connected.
    pub connects: u64,
    /// Errors from the transport (each one logged once per kind by the driver).
    pub errors: u64,
    /// Snapshot rounds asked for (a subscriber joined, the periodic timer, or after drops).
    pub snapshot_rounds: u64,
}

/// A publisher, on the hot thread.
pub enum Publisher {
    /// iceoryx2.
    Ice(ice::IcePublisher),
    /// NATS.
    Nats(nats::NatsPublisher),
}

impl Publisher {
    /// Opens the transport. An error is a configuration or environment problem, in one line.
    pub fn open(cfg: &PublishConfig) -> Result<Publisher, String> {
        match &cfg.target {
            Target::Iceoryx2 { service } => {
                let name = service.clone().unwrap_or_else(|| ice::service_name(cfg.venue));
                ice::IcePublisher::open(&name).map(Publisher::Ice)
            }
            Target::Nats { .. } => nats::NatsPublisher::open(cfg).map(Publisher::Nats),
        }
    }

    /// Hands over the records of one frame (back to back, as the tap wrote them).
    pub fn send(&mut self, records: &[u8]) {
        self.send_counted(records, count_records(records));
    }

    /// [`Publisher::send`] of `n` records the caller has counted (the tap's
    /// [`pending_records`](crate::wire::tap::Tap::pending_records)), so the hot thread does not
    /// walk them again.
    pub fn send_counted(&mut self, records: &[u8], n: u64) {
        match self {
            Publisher::Ice(p) => p.send_counted(records, n),
            Publisher::Nats(p) => p.send_counted(records, n),
        }
    }

    /// Called from the event loop's timer: true when every synced book should be published as a
    /// snapshot now (a subscriber joined, the periodic round, or room again after drops).
    pub fn wants_snapshots(&mut self, now_ns: i64) -> bool {
        let want = match self {
            Publisher::Ice(p) => p.wants_snapshots(),
            Publisher::Nats(p) => p.wants_snapshots(now_ns),
        };
        if want {
            match self {
                Publisher::Ice(p) => p.counters.snapshot_rounds += 1,
                Publisher::Nats(p) => p.counters.snapshot_rounds += 1,
            }
        }
        want
    }

    /// The counters so far.
    pub fn counters(&self) -> PublishCounters {
        match self {
            Publisher::Ice(p) => p.counters,
            Publisher::Nats(p) => p.counters(),
        }
    }

    /// Flushes what is in flight (NATS: up to `deadline`) and stops the helper thread.
    pub fn close(self, deadline: Duration) -> PublishCounters {
        match self {
            Publisher::Ice(p) => p.counters,
            Publisher::Nats(p) => p.close(deadline),
        }
    }
}

/// Counts the records in a buffer of back-to-back records (for the drop counter).
pub(crate) fn count_records(mut buf: &[u8]) -> u64 {
    let mut n = 0;
    while let Ok(h) = crate::wire::decode_header(buf) {
        let len = h.len as usize;
        if len > buf.len() {
            break;
        }
        n += 1;
        buf = &buf[len..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_are_named() {
        assert_eq!(Target::parse("iceoryx2"), Ok(Target::Iceoryx2 { service: None }));
        assert_eq!(Target::parse("iceoryx2:t/1"), Ok(Target::Iceoryx2 { service: Some("t/1".into()) }));
        assert!(Target::parse("iceoryx2:").is_err() && Target::parse("iceoryx2:a b").is_err());
        assert_eq!(Target::parse("nats://127.0.0.1:4222"), Ok(Target::Nats { host: "127.0.0.1".into(), port: 4222 }));
        assert_eq!(Target::parse("nats://bus.local"), Ok(Target::Nats { host: "bus.local".into(), port: 4222 }));
        assert_eq!(Target::parse("nats://bus:5000/"), Ok(Target::Nats { host: "bus".into(), port: 5000 }));
        for bad in ["", "iceoryx", "nats://", "nats://:4222", "nats://h:0", "nats://h:x", "tcp://h:1", "nats://a b:1"] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.starts_with("--publish") && !e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn records_are_counted_in_a_batch() {
        let mut enc = crate::wire::Encoder::new();
        let mut b = Vec::new();
        assert_eq!(count_records(&b), 0);
        for i in 0..3 {
            enc.status(
                &mut b,
                i,
                &crate::wire::StatusRec { status: crate::wire::SyncStatus::Synced, cause: 0, update_id: 1, recv_ns: 1 },
            );
        }
        assert_eq!(count_records(&b), 3);
        assert_eq!(count_records(&b[..b.len() - 1]), 2);
    }
}
