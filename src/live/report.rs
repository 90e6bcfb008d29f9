//! How a live run ended: the error that stopped it, or the reason it ended normally and what the
//! loop did (the extra `--stats` keys).

use std::io;
use std::path::PathBuf;

use super::CoreError;
use crate::binance::rest::InfoError;
use crate::binance::RestError;

/// Why a run could not go on.
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveError {
    /// exchangeInfo does not know a symbol: a configuration error, nothing to retry.
    UnknownSymbol(InfoError),
    /// `--symbol ALL`: exchangeInfo answered, but with no symbol list tickfeed can read.
    NoSymbolList(RestError),
    /// `--symbol ALL`: exchangeInfo lists no TRADING symbol (quoted in `quote`).
    NoTradingSymbols {
        /// `--quote`, if given.
        quote: Option<String>,
    },
    /// `--record DIR` cannot be set up (a bad setting, or the folder cannot be written).
    Record {
        /// The folder.
        dir: PathBuf,
        /// Why.
        error: RecordSetupError,
    },
    /// `--core`: no such core, or pinning failed.
    Core(CoreError),
    /// `--publish` or `--metrics` could not be set up (the line names which and why).
    Fanout(String),
    /// `--feed sbe`: the SBE endpoint refused the websocket upgrade with 401 (a missing or wrong
    /// API key): retrying cannot mend it.
    ApiKeyRefused {
        /// `host:port` of the endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// A bounded prefix of the server's body (Binance's `{"code":..,"msg":..}`).
        body: String,
    },
    /// A local failure retrying cannot mend: the poller, its waker or a helper thread.
    Local {
        /// What could not be done.
        what: &'static str,
        /// The OS's reason.
        error: io::Error,
    },
}

/// Why `--record` could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecordSetupError {
    /// The recorder refused its configuration.
    Config(crate::capture::ConfigError),
    /// The take folders could not be made.
    Io(crate::capture::RecordError),
}

impl LiveError {
    /// True for a mistake of the user's (exit 2, a one-line reason), false for a local failure.
    pub fn is_config(&self) -> bool {
        !matches!(self, LiveError::Local { .. })
    }
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveError::UnknownSymbol(e) => e.fmt(f),
            LiveError::NoSymbolList(e) => write!(f, "--symbol ALL needs exchangeInfo's symbol list: {e}"),
            LiveError::NoTradingSymbols { quote: Some(q) } => {
                write!(f, "--symbol ALL --quote {q}: exchangeInfo lists no TRADING symbol quoted in {q}")
            }
            LiveError::NoTradingSymbols { quote: None } => {
                f.write_str("--symbol ALL: exchangeInfo lists no TRADING symbol")
            }
            LiveError::Record { dir, error: RecordSetupError::Config(e) } => {
                write!(f, "--record {}: {e}", dir.display())
            }
            LiveError::Record { error: RecordSetupError::Io(e), .. } => write!(f, "--record: {e}"),
            LiveError::Core(e) => e.fmt(f),
            LiveError::Fanout(e) => f.write_str(e),
            LiveError::ApiKeyRefused { endpoint, status, body } => write!(
                f,
                "--feed sbe: {endpoint} refused the API key (HTTP {status}{}{}); check --api-key-file or \
                 BINANCE_API_KEY (an Ed25519 key registered with Binance)",
                if body.is_empty() { "" } else { ": " },
                body.trim()
            ),
            LiveError::Local { what, error } => write!(f, "cannot {what}: {error}"),
        }
    }
}

impl std::error::Error for LiveError {}

/// Why a run ended normally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EndReason {
    /// SIGINT or SIGTERM.
    #[default]
    Signal,
    /// `--duration` elapsed.
    Duration,
    /// `--max-events` were processed.
    MaxEvents,
}

impl EndReason {
    /// The name used in the summary line: `signal`, `duration`, `max-events`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Signal => "signal",
            EndReason::Duration => "duration",
            EndReason::MaxEvents => "max-events",
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the loop did, beyond the pipeline's own stats (written as extra `--stats` keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveReport {
    /// Websocket connections that completed the upgrade.
    pub connections: u64,
    /// Connections the symbols are split over (shards).
    pub shards: u64,
    /// Connection attempts made (every shard).
    pub connect_attempts: u64,
    /// Attempts that waited to keep within 300 per 5 minutes.
    pub connect_attempts_delayed: u64,
    /// serverShutdown notices ignored because a replacement was already under way.
    pub server_shutdowns_ignored: u64,
    /// Make-before-break switches.
    pub switches: u64,
    /// Frames from a new connection held back during an overlap (ahead of the book).
    pub held_back: u64,
    /// Switches made at once because the frames held back reached their bound (64 MiB).
    pub held_overflows: u64,
    /// Connections dropped for silence (`--stale-secs`).
    pub stale_reconnects: u64,
    /// Connections ended because the server stopped reading: more than 64 KiB of replies (pongs,
    /// a close) waited unsent.
    pub write_backlogs: u64,
    /// Connection attempts that failed before the upgrade.
    pub connect_failures: u64,
    /// Snapshot requests handed to the REST pool (a request for a symbol already in flight is not).
    pub snapshot_requests: u64,
    /// Snapshot requests the REST pool sent to the exchange.
    pub snapshots: u64,
    /// Snapshot fetches that failed (transport, HTTP status).
    pub snapshot_failures: u64,
    /// REST answers 429/418 (exchangeInfo's included).
    pub rest_rate_limited: u64,
    /// REST answers 429 (exchangeInfo's included).
    pub rest_429: u64,
    /// REST answers 418 (exchangeInfo's included).
    pub rest_418: u64,
    /// Request weight spent: exchangeInfo and every snapshot sent.
    pub rest_weight_spent: u64,
    /// Snapshot requests delayed by the weight budget or a Retry-After.
    pub rest_delayed: u64,
    /// The snapshot `limit` used (`--depth-limit`, or what `auto` chose).
    pub depth_limit: u64,
    /// Binary frames received (not used by JSON streams; counted as bad messages too).
    pub binary_frames: u64,
    /// stdout failed (closed pipe); output stopped, the run went on.
    pub stdout_closed: bool,
    /// Lines written by `--record`.
    pub recorded_lines: u64,
    /// `--record` write failures (recording stops at the first).
    pub record_errors: u64,
    /// `--redundancy` (0 when not used: the key is then left out).
    pub redundancy: u64,
    /// With redundancy: frames held back because they ran ahead of their stream on one connection.
    pub held_ahead: u64,
    /// With redundancy: what each connection slot delivered (`links` in `--stats`).
    pub links: Vec<LinkReport>,
    /// `--publish`: what the publisher handed over, dropped and (NATS) sent.
    pub publish: Option<crate::publish::PublishCounters>,
    /// `--metrics`: scrapes answered.
    pub metrics_scrapes: Option<u64>,
    /// Why the run ended.
    pub end: EndReason,
}

/// With `--redundancy`: what one connection slot of a shard delivered over the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkReport {
    /// The shard.
    pub shard: usize,
    /// Which of its connections: `A`, `B`, ...
    pub leg: char,
    /// The websocket base it connects to.
    pub url: String,
    /// Connections it opened (reconnects and switches included).
    pub connections: u64,
    /// Text frames it delivered.
    pub frames: u64,
    /// Events it delivered first (processed from it).
    pub first: u64,
    /// Copies of events another connection delivered first (dropped).
    pub duplicates: u64,
    /// Frames held back because they ran ahead of their stream.
    pub held: u64,
    /// Copies whose lag behind the first copy was measured (copies of a stream's latest event).
    pub lag_samples: u64,
    /// How far behind the first copy its copies arrived: median and 99th percentile, µs.
    pub lag_us_p50: u64,
    /// See `lag_us_p50`.
    pub lag_us_p99: u64,
}

impl LiveReport {
    /// The extra `--stats` keys.
    pub fn extra(&self) -> Vec<(&'static str, u64)> {
        let mut keys = vec![
            ("connections", self.connections),
            ("shards", self.shards),
            ("connect_attempts", self.connect_attempts),
            ("connect_attempts_delayed", self.connect_attempts_delayed),
            ("server_shutdowns_ignored", self.server_shutdowns_ignored),
            ("switches", self.switches),
            ("held_back", self.held_back),
            ("held_overflows", self.held_overflows),
            ("stale_reconnects", self.stale_reconnects),
            ("write_backlogs", self.write_backlogs),
            ("connect_failures", self.connect_failures),
            ("snapshot_requests", self.snapshot_requests),
            ("snapshots", self.snapshots),
            ("snapshot_failures", self.snapshot_failures),
            ("rest_rate_limited", self.rest_rate_limited),
            ("rest_429", self.rest_429),
            ("rest_418", self.rest_418),
            ("rest_weight_spent", self.rest_weight_spent),
            ("rest_delayed", self.rest_delayed),
            ("depth_limit", self.depth_limit),
            ("binary_frames", self.binary_frames),
            ("stdout_closed", u64::from(self.stdout_closed)),
            ("recorded_lines", self.recorded_lines),
            ("record_errors", self.record_errors),
        ];
        if let Some(c) = &self.publish {
            keys.push(("publish_records", c.records));
            keys.push(("publish_bytes", c.bytes));
            keys.push(("publish_dropped", c.dropped));
            keys.push(("publish_sent", c.sent));
            keys.push(("publish_connects", c.connects));
            keys.push(("publish_errors", c.errors));
            keys.push(("publish_snapshot_rounds", c.snapshot_rounds));
        }
        if let Some(n) = self.metrics_scrapes {
            keys.push(("metrics_scrapes", n));
        }
        if self.redundancy > 0 {
            keys.push(("redundancy", self.redundancy));
            keys.push(("held_ahead", self.held_ahead));
        }
        keys
    }

    /// Extra `--stats` values that are not numbers: `links` (with redundancy), a JSON array.
    pub fn extra_json(&self) -> Vec<(&'static str, String)> {
        if self.links.is_empty() {
            return Vec::new();
        }
        let mut o = String::from("[");
        for (i, l) in self.links.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str(&format!(
                "{{\"shard\":{},\"leg\":\"{}\",\"url\":\"{}\",\"connections\":{},\"frames\":{},\"first\":{},\
                 \"duplicates\":{},\"held\":{},\"lag_samples\":{},\"lag_us_p50\":{},\"lag_us_p99\":{}}}",
                l.shard,
                l.leg,
                l.url.replace('\\', "\\\\").replace('"', "\\\""),
                l.connections,
                l.frames,
                l.first,
                l.duplicates,
                l.held,
                l.lag_samples,
                l.lag_us_p50,
                l.lag_us_p99
            ));
        }
        o.push(']');
        vec![("links", o)]
    }
}
