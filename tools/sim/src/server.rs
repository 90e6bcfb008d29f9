//! The listener: accepts TCP connections on the one address, wraps them in TLS when configured,
//! reads the HTTP request head and routes it: websocket upgrades on `/stream` and `/ws/...` to
//! `ws` (after Binance's connection-attempt and streams-per-connection limits, which refuse the
//! upgrade with 429 or 400), `/api/...` to `rest`, anything else to a 404.
//!
//! One thread per connection (the simulator serves a handful of test clients; threads keep every
//! wait a blocking one, so nothing spins on the shared 2-core box). It tracks each connection's
//! socket so shutdown can unblock them all. It does not build payloads.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, StreamOwned};

use crate::faults::Counters;
use crate::http::{self, HeadError, RequestHead};
use crate::hub::{lock, Hub};
use crate::io::{Io, Transport};
use crate::limits::ConnectAttempts;
use crate::rest::{self, RestState};
use crate::ws::{self, ConnConfig};

/// How long a client may take to send its first request head (includes the TLS handshake).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle keep-alive REST connection is kept.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(30);

/// Shared by the accept loop and connection threads.
pub(crate) struct Server {
    pub hub: Arc<Hub>,
    pub tls: Option<Arc<ServerConfig>>,
    pub rest: RestState,
    pub conn_cfg: ConnConfig,
    /// SBE endpoint: the API keys accepted (`SimConfig::sbe_keys`); empty: any non-empty key.
    pub sbe_keys: Vec<String>,
    /// Websocket upgrade attempts per peer IP, for the connection-attempt limit.
    attempts: Mutex<ConnectAttempts>,
    conns: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
}

impl Server {
    /// A server over `hub`.
    pub fn new(hub: Arc<Hub>, tls: Option<Arc<ServerConfig>>, rest: RestState, conn_cfg: ConnConfig) -> Server {
        Server {
            hub,
            tls,
            rest,
            conn_cfg,
            sbe_keys: Vec::new(),
            attempts: Mutex::new(ConnectAttempts::default()),
            conns: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Shuts every open connection's socket (unblocking its thread) and joins them all.
    pub fn close_all(&self) {
        for (_, s) in lock(&self.conns).drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = lock(&self.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Accepts until the simulator stops.
pub(crate) fn accept_loop(server: Arc<Server>, listener: TcpListener) {
    for stream in listener.incoming() {
        if server.hub.stopping() {
            break;
        }
        let Ok(stream) = stream else {
            // Transient accept errors (EMFILE, aborted handshakes) must not end the server.
            if !server.hub.sleep(Duration::from_millis(10)) {
                break;
            }
            continue;
        };
        let id = server.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            lock(&server.conns).insert(id, clone);
        }
        let s = server.clone();
        let handle = std::thread::Builder::new().name(format!("sim-conn-{id}")).spawn(move || {
            handle_connection(&s, stream, id);
            lock(&s.conns).remove(&id);
        });
        let mut threads = lock(&server.threads);
        threads.retain(|t| !t.is_finished());
        if let Ok(h) = handle {
            threads.push(h);
        }
    }
}

fn handle_connection(server: &Server, tcp: TcpStream, id: u64) {
    // Binance's limits are per IP; on loopback every client is 127.0.0.1 unless it binds another
    // loopback address.
    let peer = tcp.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(HEAD_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(server.conn_cfg.write_timeout));
    let transport = match &server.tls {
        Some(cfg) => match crate::tls::session(cfg) {
            Ok(sess) => Transport::Tls(Box::new(StreamOwned::new(sess, tcp))),
            Err(_) => return,
        },
        None => Transport::Plain(tcp),
    };
    let mut io = Io::new(transport);
    let mut first = true;
    loop {
        if !first {
            let _ = io.set_timeouts(Some(KEEP_ALIVE_IDLE), Some(server.conn_cfg.write_timeout));
        }
        let (head, rest_bytes) = match http::read_head(&mut io) {
            Ok(x) => x,
            Err(HeadError::Closed) if !first => return,
            Err(HeadError::Io) if !first => return,
            Err(HeadError::Malformed(why)) => {
                Counters::bump(&server.hub.counters.http_bad_requests);
                let body = format!("{{\"code\":-1000,\"msg\":\"{why}\"}}");
                let _ = http::write_response(&mut io, 400, &[], &body, false);
                return;
            }
            Err(_) => {
                // Includes failed TLS handshakes: the client did not trust our CA, or spoke
                // plain HTTP to a TLS port.
                Counters::bump(&server.hub.counters.http_bad_requests);
                return;
            }
        };
        first = false;
        io.unread(&rest_bytes);
        let path = head.path().to_string();
        // Futures' path tiers: /public/stream, /market/ws/..., beside the legacy paths.
        let ws_path = |p: &str| p == "/stream" || p == "/ws" || p.starts_with("/ws/");
        let tiered =
            server.conn_cfg.futures && ["/public", "/market"].iter().any(|t| path.strip_prefix(t).is_some_and(ws_path));
        if ws_path(&path) || tiered {
            if admit_attempt(server, &mut io, peer) {
                serve_websocket(server, io, &head, id);
            }
            return;
        }
        if path.starts_with("/api/") || path.starts_with("/fapi/") {
            let resp = rest::respond(&server.hub, &server.rest, &head, peer);
            if let Some(d) = resp.delay {
                if !server.hub.sleep(d) {
                    return;
                }
            }
            let keep = head.keep_alive();
            if http::write_response(&mut io, resp.status, &resp.headers, &resp.body, keep).is_err() || !keep {
                return;
            }
            continue;
        }
        Counters::bump(&server.hub.counters.http_bad_requests);
        let _ = http::write_response(&mut io, 404, &[], "{\"code\":-1000,\"msg\":\"Unknown path.\"}", false);
        return;
    }
}

/// Counts one upgrade attempt from `peer` against Binance's connection-attempt limit (300 per
/// 5 minutes per IP, sliding). Past it, answers 429 with `Retry-After` (seconds until the window
/// has room) and returns false. Binance documents the limit, not its answer; a 429 with
/// Retry-After is what its REST side does for a broken rate limit.
fn admit_attempt(server: &Server, io: &mut Io, peer: IpAddr) -> bool {
    let hub = &server.hub;
    Counters::bump(&hub.counters.connect_attempts);
    let limit = u32::try_from(hub.faults.connect_limit.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
    let window = Duration::from_millis(hub.faults.connect_window_ms.load(Ordering::Relaxed));
    let Err(wait) = lock(&server.attempts).attempt(peer, Instant::now(), limit, window) else {
        return true;
    };
    Counters::bump(&hub.counters.connect_attempts_refused);
    let secs = u64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1);
    let body = format!(
        "{{\"code\":-1003,\"msg\":\"Too many connection attempts: more than {limit} in {} s from this IP. Retry after {secs} s.\"}}",
        window.as_secs()
    );
    let _ = http::write_response(io, 429, &[("Retry-After", secs.to_string())], &body, false);
    false
}

fn is_upgrade(head: &RequestHead) -> bool {
    head.method == "GET"
        && head.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && head.header("connection").is_some_and(|v| v.to_ascii_lowercase().contains("upgrade"))
        && head.header("sec-websocket-version") == Some("13")
        && head.header("sec-websocket-key").is_some()
}

fn serve_websocket(server: &Server, mut io: Io, head: &RequestHead, id: u64) {
    let bad = |io: &mut Io, status: u16, msg: &str| {
        Counters::bump(&server.hub.counters.http_bad_requests);
        let _ = http::write_response(io, status, &[], &format!("{{\"code\":-1100,\"msg\":\"{msg}\"}}"), false);
    };
    if !is_upgrade(head) {
        return bad(&mut io, 426, "Websocket upgrade required.");
    }
    if server.conn_cfg.sbe && head.header("x-mbx-apikey").is_none_or(|k| k.trim().is_empty()) {
        // Binance's SBE stream page requires the header but does not document the refusal; a
        // 401 naming the problem, with -2014 (its "API-key format invalid" code).
        Counters::bump(&server.hub.counters.http_bad_requests);
        let body = "{\"code\":-2014,\"msg\":\"API key required: send it in the X-MBX-APIKEY header.\"}";
        let _ = http::write_response(&mut io, 401, &[], body, false);
        return;
    }
    let key = head.header("x-mbx-apikey").map(str::trim).unwrap_or_default();
    if server.conn_cfg.sbe && !server.sbe_keys.is_empty() && !server.sbe_keys.iter().any(|k| k == key) {
        // A key Binance does not know: its REST answer for one is -2015 with this text.
        Counters::bump(&server.hub.counters.http_bad_requests);
        let body = "{\"code\":-2015,\"msg\":\"Invalid API-key, IP, or permissions for action.\"}";
        let _ = http::write_response(&mut io, 401, &[], body, false);
        return;
    }
    let params = match ws::parse_target_for(server.conn_cfg.futures, head.path(), &head.query()) {
        Ok(p) => p,
        Err(msg) => return bad(&mut io, 400, msg),
    };
    let max_streams = server.hub.faults.max_streams.load(Ordering::Relaxed) as usize;
    let asked = params.subs.names.len();
    if max_streams > 0 && asked > max_streams {
        // Binance does not document this answer; -1101 is its "too many parameters" code.
        Counters::bump(&server.hub.counters.streams_refused);
        let body = format!(
            "{{\"code\":-1101,\"msg\":\"Too many streams: {asked} requested, at most {max_streams} per connection.\"}}"
        );
        let _ = http::write_response(&mut io, 400, &[], &body, false);
        return;
    }
    let key = head.header("sec-websocket-key").unwrap_or_default().to_string();
    // Registered before the 101 goes out: once a client sees its upgrade answered, faults aimed
    // at the connections open now (a lag, injected frames) reach it.
    let own = server.hub.register_conn(id, &params.subs.names);
    if ws::write_upgrade(&mut io, &key).is_ok() {
        ws::serve(&server.hub, io, id, params, server.conn_cfg, own);
    }
    server.hub.unregister_conn(id);
}
