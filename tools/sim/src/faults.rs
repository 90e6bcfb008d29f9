//! Fault injection and observability: the plan a simulator starts with, the runtime switches a
//! test flips on live connections, and the counters that prove each fault really happened. The
//! plan also carries Binance's websocket laws (incoming messages per second, streams per
//! connection, connection attempts per IP), on by default, with counters that prove a client
//! kept them.
//!
//! One-shot faults (drop the next diff, abort, close 1001, serverShutdown, a malformed message,
//! an unknown-stream message, a binary frame) are generation counters: injecting bumps the
//! counter and every websocket connection alive at that moment acts on it once, at its next
//! wake-up (within `poll_interval`). Connections opened later are unaffected. Standing faults
//! (fragmentation, pings, connection age, periodic drops, REST delay, a paused market) are read on
//! every loop, so changing them takes effect on live connections too. Faults aimed at the
//! connections open at one moment (a lag, injected frames) go through each connection's own
//! `ConnFaults`, found in the hub's registry of live connections; so do faults aimed at one
//! connection (its own one-shot generations, added to the global ones) or at chosen symbols (the
//! symbols whose next diff it skips), which is what a handler with shards or A/B connections needs. This module holds state only;
//! the connection, market and REST modules act on it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Duration;

/// Faults a simulator starts with (from `SimConfig` or the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlan {
    /// Server ping period (Binance: 20 s). `None`: never ping.
    pub ping_interval: Option<Duration>,
    /// Disconnect when a ping is not answered by a matching pong within this (Binance: 60 s).
    pub pong_timeout: Duration,
    /// Disconnect a websocket after this age (Binance: 24 h). `None`: never.
    pub max_connection_age: Option<Duration>,
    /// Binance's incoming-message limit (5 per second; pings, pongs and control messages all
    /// count): a connection sending more within any one-second window is closed (1008,
    /// `disconnects_rate_limit`). `None`: no limit. Default 5. Pongs count too, as on Binance: a
    /// simulator told to ping more than 4 times a second tests whether a client keeps the law
    /// rather than answering every ping.
    pub max_incoming_per_sec: Option<u32>,
    /// Binance's streams-per-connection limit: a `/stream?streams=` or `/ws/a/b` URL naming more
    /// distinct streams is refused (HTTP 400), and so is a SUBSCRIBE that would take a connection
    /// past it (in-band `{"code":2,..}`, subscriptions unchanged); `streams_refused` counts both.
    /// `None`: no limit. Default 1024.
    pub max_streams_per_connection: Option<usize>,
    /// Binance's connection-attempt limit: websocket upgrade attempts per peer IP within
    /// `connect_attempt_window` (sliding). One more is answered HTTP 429 with `Retry-After`
    /// (`connect_attempts_refused`); refused attempts count too. `None`: no limit. Default 300.
    pub max_connect_attempts: Option<u32>,
    /// The window of `max_connect_attempts`. Default 300 s (Binance: 5 minutes).
    pub connect_attempt_window: Duration,
    /// Split every text message into this many frames (`None` or 1: one frame).
    pub fragment_frames: Option<usize>,
    /// Drop one of every N depth diffs on each connection (a real gap).
    pub drop_diff_every: Option<u64>,
    /// Send a malformed JSON text message after every N market messages.
    pub malformed_every: Option<u64>,
    /// Send a message for a stream the client did not subscribe after every N market messages.
    pub unknown_stream_every: Option<u64>,
    /// Send a binary frame after every N market messages.
    pub binary_every: Option<u64>,
    /// Inject close 1001 into all live connections this long after start.
    pub close_after: Option<Duration>,
    /// Inject a TCP reset into all live connections this long after start.
    pub abort_after: Option<Duration>,
    /// Inject `serverShutdown` (then close) into all live connections this long after start.
    pub shutdown_after: Option<Duration>,
    /// Answer the first N REST requests with HTTP 429.
    pub rest_429_next: u32,
    /// Answer the first N REST requests (after any 429s) with HTTP 418.
    pub rest_418_next: u32,
    /// `Retry-After` seconds sent with injected 429/418.
    pub retry_after_secs: u32,
    /// Delay every REST answer by this much.
    pub rest_delay: Option<Duration>,
    /// Write every market message on every connection this late (a slow network path). `None`:
    /// no lag.
    pub connection_lag: Option<Duration>,
}

impl FaultPlan {
    /// This plan under USDⓈ-M futures' connection law: whichever of the ping period, the pong
    /// timeout and the incoming-message limit is at spot's default (20 s, 60 s, 5 a second)
    /// becomes futures' (3 minutes, 10 minutes, 10 a second); a value set to anything else stays.
    pub fn for_usdm(mut self) -> FaultPlan {
        let spot = FaultPlan::default();
        if self.ping_interval == spot.ping_interval {
            self.ping_interval = Some(Duration::from_secs(180));
        }
        if self.pong_timeout == spot.pong_timeout {
            self.pong_timeout = Duration::from_secs(600);
        }
        if self.max_incoming_per_sec == spot.max_incoming_per_sec {
            self.max_incoming_per_sec = Some(10);
        }
        self
    }
}

impl Default for FaultPlan {
    /// Binance's own rules and no injected faults: ping every 20 s, pong within 60 s, 24 h age,
    /// 5 incoming messages a second, 1024 streams per connection, 300 connection attempts per
    /// 5 minutes per IP.
    fn default() -> FaultPlan {
        FaultPlan {
            ping_interval: Some(Duration::from_secs(20)),
            pong_timeout: Duration::from_secs(60),
            max_connection_age: Some(Duration::from_secs(24 * 3600)),
            max_incoming_per_sec: Some(5),
            max_streams_per_connection: Some(1024),
            max_connect_attempts: Some(300),
            connect_attempt_window: Duration::from_secs(300),
            fragment_frames: None,
            drop_diff_every: None,
            malformed_every: None,
            unknown_stream_every: None,
            binary_every: None,
            close_after: None,
            abort_after: None,
            shutdown_after: None,
            rest_429_next: 0,
            rest_418_next: 0,
            retry_after_secs: 2,
            rest_delay: None,
            connection_lag: None,
        }
    }
}

/// One-shot faults, in the order of `FaultState::gens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OneShot {
    DropDiff = 0,
    Abort = 1,
    Close1001 = 2,
    ServerShutdown = 3,
    Malformed = 4,
    UnknownStream = 5,
    Binary = 6,
}

pub(crate) const ONE_SHOTS: usize = 7;

/// The kind of REST rejection to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestReject {
    /// HTTP 429, request rate limit broken.
    TooManyRequests,
    /// HTTP 418, IP auto-banned.
    Banned,
}

/// Something to write on every websocket connection open at the moment of the call
/// (`Faults::inject`), mostly what a well-behaved exchange never sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inject {
    /// One text message with any content (it need not be JSON, nor small).
    Text(String),
    /// One text message split over this many frames (a text frame, then continuations).
    Fragmented(String, usize),
    /// One binary message.
    Binary(Vec<u8>),
    /// A ping with this payload (at most 125 bytes, as for every control frame). It is an
    /// outstanding ping like the simulator's own: the pong must echo it within the pong timeout.
    Ping(Vec<u8>),
    /// Bytes written to the stream as they are, outside websocket framing: a protocol violation
    /// such as reserved bits, a reserved opcode or a bad length.
    Raw(Vec<u8>),
}

/// Fault state of one live websocket connection, reachable from the hub's registry so a switch
/// can act on exactly the connections open at the call, or on one of them.
#[derive(Debug, Default)]
pub(crate) struct ConnFaults {
    /// Microseconds every message the connection writes on the market's behalf waits.
    pub lag_us: AtomicU64,
    /// Frames to write at the connection's next wake-up.
    pub inbox: Mutex<Vec<Inject>>,
    /// One-shot faults aimed at this connection only, in the order of `FaultState::gens`. The
    /// connection adds them to the global ones: one aimed here acts exactly as a global one would.
    pub gens: [AtomicU64; ONE_SHOTS],
    /// The `serverShutdown` close delay (ms) of the latest `ServerShutdown` aimed here.
    pub shutdown_close_after_ms: AtomicU64,
    /// Lowercase symbols whose next depth diff this connection is to skip (each once), taken at
    /// its next wake-up.
    pub drop_symbols: Mutex<Vec<String>>,
    /// The stream names the connection is subscribed to now, in subscription order; written by
    /// the connection whenever they change, read by `Faults::connections` and per-symbol drops.
    pub streams: Mutex<Vec<String>>,
}

impl ConnFaults {
    /// A connection's entry starting with `streams` and `lag_us` of lag.
    pub fn new(streams: &[String], lag_us: u64) -> ConnFaults {
        let c = ConnFaults { streams: Mutex::new(streams.to_vec()), ..ConnFaults::default() };
        c.lag_us.store(lag_us, Relaxed);
        c
    }

    /// Current generation of every one-shot fault aimed at this connection.
    pub fn gens(&self) -> [u64; ONE_SHOTS] {
        std::array::from_fn(|i| self.gens[i].load(SeqCst))
    }

    /// Bumps a one-shot fault for this connection only.
    pub fn bump(&self, f: OneShot) {
        self.gens[f as usize].fetch_add(1, SeqCst);
    }
}

/// Pending REST rejections and delay.
#[derive(Debug, Default)]
pub(crate) struct RestFaults {
    pub reject_429: u32,
    pub reject_418: u32,
    pub retry_after_secs: u32,
    pub delay: Option<Duration>,
}

/// Live fault switches shared by every connection.
#[derive(Debug)]
pub(crate) struct FaultState {
    pub gens: [AtomicU64; ONE_SHOTS],
    /// 0 = off.
    pub fragment: AtomicU64,
    pub ping_interval_ms: AtomicU64,
    pub pong_timeout_ms: AtomicU64,
    pub max_age_ms: AtomicU64,
    pub max_incoming: AtomicU64,
    /// Streams per connection (0: no limit).
    pub max_streams: AtomicU64,
    /// Upgrade attempts per IP per window (0: no limit), and the window.
    pub connect_limit: AtomicU64,
    pub connect_window_ms: AtomicU64,
    pub drop_every: AtomicU64,
    pub malformed_every: AtomicU64,
    pub unknown_every: AtomicU64,
    pub binary_every: AtomicU64,
    pub rest: Mutex<RestFaults>,
    /// Lag (µs) given to websocket connections opened from now on.
    pub new_conn_lag_us: AtomicU64,
    /// How long after its `serverShutdown` event a connection closes (ms; 0: at once).
    pub shutdown_close_after_ms: AtomicU64,
    /// The market publishes nothing while set.
    pub paused: AtomicBool,
}

fn ms(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
}

/// Microseconds of an optional duration (0 for `None`), saturating.
pub(crate) fn us(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl FaultState {
    /// Switches as `plan` sets them.
    pub fn new(plan: &FaultPlan) -> FaultState {
        FaultState {
            gens: Default::default(),
            fragment: AtomicU64::new(plan.fragment_frames.unwrap_or(0) as u64),
            ping_interval_ms: AtomicU64::new(ms(plan.ping_interval)),
            pong_timeout_ms: AtomicU64::new(ms(Some(plan.pong_timeout))),
            max_age_ms: AtomicU64::new(ms(plan.max_connection_age)),
            max_incoming: AtomicU64::new(u64::from(plan.max_incoming_per_sec.unwrap_or(0))),
            max_streams: AtomicU64::new(plan.max_streams_per_connection.unwrap_or(0) as u64),
            connect_limit: AtomicU64::new(u64::from(plan.max_connect_attempts.unwrap_or(0))),
            connect_window_ms: AtomicU64::new(ms(Some(plan.connect_attempt_window))),
            drop_every: AtomicU64::new(plan.drop_diff_every.unwrap_or(0)),
            malformed_every: AtomicU64::new(plan.malformed_every.unwrap_or(0)),
            unknown_every: AtomicU64::new(plan.unknown_stream_every.unwrap_or(0)),
            binary_every: AtomicU64::new(plan.binary_every.unwrap_or(0)),
            rest: Mutex::new(RestFaults {
                reject_429: plan.rest_429_next,
                reject_418: plan.rest_418_next,
                retry_after_secs: plan.retry_after_secs,
                delay: plan.rest_delay,
            }),
            new_conn_lag_us: AtomicU64::new(us(plan.connection_lag)),
            shutdown_close_after_ms: AtomicU64::new(0),
            paused: AtomicBool::new(false),
        }
    }

    /// Current generation of every one-shot fault.
    pub fn gens(&self) -> [u64; ONE_SHOTS] {
        // SeqCst pairs with `bump`: a connection that sees a new generation also sees what was
        // stored before it (the serverShutdown close delay).
        std::array::from_fn(|i| self.gens[i].load(SeqCst))
    }

    /// Bumps a one-shot fault.
    pub fn bump(&self, f: OneShot) {
        self.gens[f as usize].fetch_add(1, SeqCst);
    }
}

macro_rules! counters {
    ($($name:ident : $doc:literal),* $(,)?) => {
        /// Live counters, bumped by the simulator's threads.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub $name: AtomicU64,)*
        }

        /// A copy of every counter at one moment; what `SimHandle::counters` returns.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct CounterSnapshot {
            $(#[doc = $doc] pub $name: u64,)*
        }

        impl Counters {
            /// Reads every counter (each individually; they are not a consistent cut).
            pub fn snapshot(&self) -> CounterSnapshot {
                CounterSnapshot { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    ws_connections: "Websocket connections accepted (handshake completed).",
    connect_attempts: "Websocket upgrade attempts (requests on /stream or /ws...), refused ones included.",
    connect_attempts_refused: "Upgrade attempts answered 429: past the connection-attempt limit of their IP.",
    wrong_tier_streams: "USDⓈ-M futures: subscribed streams never delivered because the connection is on the other path tier (/public, /market) or on the legacy path, which carries /public streams only.",
    streams_refused: "Upgrades (HTTP 400) and SUBSCRIBEs (in-band code 2) refused for taking a connection past its stream limit.",
    rest_requests: "REST requests answered (any status).",
    depth_requests: "REST /api/v3/depth requests answered (any status, injected rejections included).",
    exchange_info_requests: "REST /api/v3/exchangeInfo requests answered (any status).",
    http_bad_requests: "Connections whose HTTP request could not be served (bad head, unknown path, failed TLS).",
    events_published: "Market messages published (all streams, all symbols).",
    diffs_published: "Reference depth diffs published (the primary depth stream of each symbol).",
    messages_sent: "Market messages written to websocket clients.",
    gaps_injected: "Depth diffs deliberately not sent to a client (each makes a U > prev u + 1 gap).",
    pings_sent: "Server pings sent.",
    pongs_received: "Pongs received.",
    pongs_matched: "Pongs whose payload matched an outstanding ping.",
    pongs_unsolicited: "Pongs received with no outstanding ping or an empty payload (allowed, ignored).",
    client_pings: "Pings received from clients (answered by tungstenite).",
    fragmented_messages: "Text messages sent split over several frames.",
    malformed_sent: "Malformed JSON messages sent.",
    unknown_stream_sent: "Messages sent for a stream the client did not subscribe.",
    binary_sent: "Binary frames sent.",
    server_shutdowns_sent: "serverShutdown events sent.",
    frames_injected: "Frames (or raw byte strings) written by `Faults::inject`, counted per connection.",
    lagged_messages: "Messages a lagged connection wrote late (market data, injected frames, control replies).",
    market_pauses: "Times the market thread stopped publishing because the market was paused.",
    control_requests: "SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS/SET_PROPERTY/GET_PROPERTY requests received.",
    control_errors: "Control requests answered with an error.",
    rest_429_sent: "REST requests answered 429.",
    rest_418_sent: "REST requests answered 418 (injected, or while an IP is banned).",
    rest_bans: "IP bans started: a REST request arrived within the Retry-After of a 429 its IP was sent.",
    rest_delayed: "REST answers deliberately delayed.",
    replay_gaps: "Gaps found inside a replayed recording (the symbol's reference book becomes unknown).",
    disconnects_client_close: "Websockets closed by the client.",
    disconnects_close_1001: "Websockets closed by an injected close 1001.",
    disconnects_abort: "Websockets reset by an injected abort.",
    disconnects_server_shutdown: "Websockets closed after an injected serverShutdown.",
    disconnects_pong_timeout: "Websockets closed because a ping went unanswered past the limit.",
    disconnects_pong_mismatch: "Websockets closed because a pong's payload matched no ping.",
    disconnects_max_age: "Websockets closed at the connection age limit.",
    disconnects_rate_limit: "Websockets closed (1008) for sending more messages per second than allowed (Binance: 5).",
    disconnects_slow_consumer: "Websockets dropped for not keeping up: behind the retained event log, or a write blocked past the write timeout.",
    slow_consumer_sim_behind: "Of `disconnects_slow_consumer`, drops behind the log of a connection that spent less than half the time since it was last caught up waiting on writes to its client: the simulator fell behind, not the client. Stays 0 unless the simulator is starved or the market stalled past the log.",
    ws_backlog_max: "A high-water mark, not a count: the most published events any websocket connection found waiting for it when it came to take them (of `log_capacity`; one past it is a slow-consumer drop).",
    disconnects_io_error: "Websockets dropped on an I/O or protocol error.",
    disconnects_sim_shutdown: "Websockets closed because the simulator shut down.",
}

/// Why the simulator ended a websocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disconnect {
    ClientClose,
    Close1001,
    Abort,
    ServerShutdown,
    PongTimeout,
    PongMismatch,
    MaxAge,
    RateLimit,
    SlowConsumer,
    IoError,
    SimShutdown,
}

impl Counters {
    /// Adds one to `c`.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    /// Counts a disconnect by reason.
    pub fn disconnect(&self, why: Disconnect) {
        let c = match why {
            Disconnect::ClientClose => &self.disconnects_client_close,
            Disconnect::Close1001 => &self.disconnects_close_1001,
            Disconnect::Abort => &self.disconnects_abort,
            Disconnect::ServerShutdown => &self.disconnects_server_shutdown,
            Disconnect::PongTimeout => &self.disconnects_pong_timeout,
            Disconnect::PongMismatch => &self.disconnects_pong_mismatch,
            Disconnect::MaxAge => &self.disconnects_max_age,
            Disconnect::RateLimit => &self.disconnects_rate_limit,
            Disconnect::SlowConsumer => &self.disconnects_slow_consumer,
            Disconnect::IoError => &self.disconnects_io_error,
            Disconnect::SimShutdown => &self.disconnects_sim_shutdown,
        };
        Counters::bump(c);
    }
}
