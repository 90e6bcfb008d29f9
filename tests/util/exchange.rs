//! A small Binance-shaped exchange on 127.0.0.1 for the live handler's tests of faults the
//! simulator (`tickfeed_sim`, used for everything else) has no switch for: raw bytes on the
//! websocket (protocol violations), arbitrary text frames, a market that pauses while connections
//! stay open, one connection delayed relative to another, and a close that comes some time after
//! `serverShutdown`. Combined-stream websocket (`/stream?streams=...`) and REST
//! (`/api/v3/exchangeInfo`, `/api/v3/depth`) on one port, plain or TLS (a throwaway CA from
//! rcgen), a synthetic market with a reference book history.
//!
//! It is deliberately independent of the tickfeed crate (tungstenite and rustls server side, books
//! in BTreeMaps, decimals formatted here), so what it says is an oracle for the handler. Every
//! thread polls a stop flag; dropping the [`Exchange`] stops them all.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::protocol::Role;
use tungstenite::{Bytes, Message, WebSocket};

/// Mid price in ticks of 0.01 (30000.00).
const MID: i64 = 3_000_000;
/// One tick in 1e-8 units.
const TICK_UNITS: i64 = 1_000_000;
/// Levels are kept within this many ticks of the mid.
const BAND: i64 = 60;

/// How the exchange starts.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// TLS (wss/https) or plain.
    pub tls: bool,
    /// Symbols (any case).
    pub symbols: Vec<String>,
    /// Time between market steps (each step: one diff and one trade per symbol).
    pub interval: Duration,
    /// RNG seed.
    pub seed: u64,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig { tls: false, symbols: vec!["btcusdt".into()], interval: Duration::from_millis(10), seed: 7 }
    }
}

/// One side of a book: price ticks -> qty units.
pub type Side = BTreeMap<i64, i64>;
/// Levels as `(price, qty)` decimal strings.
pub type Levels = Vec<(String, String)>;

/// A book state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BookState {
    /// Bids.
    pub bids: Side,
    /// Asks.
    pub asks: Side,
}

impl BookState {
    /// Levels as the handler's dump writes them: bids best first, asks best first, 8 decimals.
    pub fn levels(&self) -> (Levels, Levels) {
        let f = |(&p, &q): (&i64, &i64)| (dec8(p * TICK_UNITS), dec8(q));
        (self.bids.iter().rev().map(f).collect(), self.asks.iter().map(f).collect())
    }
}

/// 1e-8 units as an 8-decimal string.
pub fn dec8(units: i64) -> String {
    format!("{}.{:08}", units / 100_000_000, units % 100_000_000)
}

struct SymMarket {
    upper: String,
    lower: String,
    book: BookState,
    last_id: u64,
    trade_id: u64,
    agg_id: u64,
    /// Book after each id (the `u` of each diff), most recent last.
    history: VecDeque<(u64, BookState)>,
    /// Ids to skip silently before the next broadcast diff (a gap).
    skip: u64,
}

struct ConnHandle {
    id: u64,
    tx: Sender<Cmd>,
    streams: Vec<String>,
    alive: Arc<AtomicBool>,
    /// Every frame waits this long (microseconds) before it is written: a slow path.
    lag: Arc<AtomicU64>,
}

/// What a test can make a connection do.
#[derive(Debug, Clone)]
pub enum Cmd {
    /// A text frame (market data or anything).
    Text(String),
    /// A text message split into this many fragments.
    Fragmented(String, usize),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A ping with this payload.
    Ping(Vec<u8>),
    /// A close frame (then the server waits for the reply and drops the socket).
    Close,
    /// Drop the TCP connection without a close frame.
    Reset,
    /// Raw bytes written as they are (malformed framing).
    Raw(Vec<u8>),
}

/// Counters a test can read.
#[derive(Debug, Default)]
pub struct Counters {
    /// Websocket upgrades accepted.
    pub ws_connections: AtomicU64,
    /// exchangeInfo requests.
    pub exchange_info: AtomicU64,
    /// depth requests (answered any way).
    pub depth_requests: AtomicU64,
    /// depth requests answered 429.
    pub rejected: AtomicU64,
}

struct Shared {
    cfg: ExchangeConfig,
    market: Mutex<Vec<SymMarket>>,
    conns: Mutex<Vec<ConnHandle>>,
    stop: AtomicBool,
    paused: AtomicBool,
    /// Send every other market frame in three fragments.
    fragment: AtomicBool,
    /// Lag (microseconds) given to connections opened from now on.
    new_lag: AtomicU64,
    next_conn: AtomicU64,
    counters: Counters,
    /// Pong payloads received, in order.
    pongs: Mutex<Vec<Vec<u8>>>,
    /// Depth answers to give instead of a snapshot: (status, Retry-After seconds).
    depth_rejects: Mutex<VecDeque<(u16, u64)>>,
    /// When each depth request arrived.
    depth_times: Mutex<Vec<Instant>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running test exchange.
pub struct Exchange {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    threads: Vec<thread::JoinHandle<()>>,
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

impl Exchange {
    /// Starts the exchange on 127.0.0.1 (a free port).
    pub fn start(cfg: ExchangeConfig) -> Exchange {
        let (tls, ca_pem) = if cfg.tls {
            let (c, pem) = tls_material();
            (Some(c), Some(pem))
        } else {
            (None, None)
        };
        let mut rng = Rng(cfg.seed | 1);
        let market = cfg
            .symbols
            .iter()
            .map(|s| {
                let mut book = BookState::default();
                for k in 0..BAND {
                    if rng.below(3) > 0 {
                        book.bids.insert(MID - 1 - k, 1 + rng.below(500_000_000) as i64);
                    }
                    if rng.below(3) > 0 {
                        book.asks.insert(MID + 1 + k, 1 + rng.below(500_000_000) as i64);
                    }
                }
                let last_id = 1_000_000 + rng.below(1000);
                let mut history = VecDeque::new();
                history.push_back((last_id, book.clone()));
                SymMarket {
                    upper: s.to_ascii_uppercase(),
                    lower: s.to_ascii_lowercase(),
                    book,
                    last_id,
                    trade_id: 5_000_000,
                    agg_id: 900_000,
                    history,
                    skip: 0,
                }
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            market: Mutex::new(market),
            conns: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            fragment: AtomicBool::new(false),
            new_lag: AtomicU64::new(0),
            next_conn: AtomicU64::new(1),
            counters: Counters::default(),
            pongs: Mutex::new(Vec::new()),
            depth_rejects: Mutex::new(VecDeque::new()),
            depth_times: Mutex::new(Vec::new()),
            tls,
        });
        let mut threads = Vec::new();
        let sh = shared.clone();
        threads.push(thread::spawn(move || accept_loop(sh, listener)));
        let sh = shared.clone();
        threads.push(thread::spawn(move || market_loop(sh, rng)));
        Exchange { shared, addr, ca_pem, threads }
    }

    /// `ws://127.0.0.1:PORT` or `wss://...`.
    pub fn ws_base(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.ca_pem.is_some() { "wss" } else { "ws" }, self.addr.port())
    }

    /// `http://127.0.0.1:PORT` or `https://...`.
    pub fn rest_base(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.ca_pem.is_some() { "https" } else { "http" }, self.addr.port())
    }

    /// The CA certificate (PEM) to trust, when TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The book of `symbol` right after update id `id`, if still in the history.
    pub fn book_at(&self, symbol: &str, id: u64) -> Option<BookState> {
        let m = self.shared.market.lock().unwrap();
        let s = m.iter().find(|s| s.upper.eq_ignore_ascii_case(symbol))?;
        s.history.iter().find(|(u, _)| *u == id).map(|(_, b)| b.clone())
    }

    /// The latest update id of `symbol`.
    pub fn last_id(&self, symbol: &str) -> u64 {
        let m = self.shared.market.lock().unwrap();
        m.iter().find(|s| s.upper.eq_ignore_ascii_case(symbol)).map_or(0, |s| s.last_id)
    }

    /// Skip `n` update ids of `symbol` before its next broadcast diff (a sequence gap).
    pub fn gap(&self, symbol: &str, n: u64) {
        let mut m = self.shared.market.lock().unwrap();
        if let Some(s) = m.iter_mut().find(|s| s.upper.eq_ignore_ascii_case(symbol)) {
            s.skip += n;
        }
    }

    /// Send every other market frame in three fragments (or stop doing so).
    pub fn fragment(&self, on: bool) {
        self.shared.fragment.store(on, Ordering::SeqCst);
    }

    /// Stop (or resume) the market: connections stay open but go silent.
    pub fn pause(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::SeqCst);
    }

    /// Sends `cmd` to every open connection; returns how many got it.
    pub fn broadcast(&self, cmd: Cmd) -> usize {
        let conns = self.shared.conns.lock().unwrap();
        conns.iter().filter(|c| c.alive.load(Ordering::SeqCst)).filter(|c| c.tx.send(cmd.clone()).is_ok()).count()
    }

    /// Open websocket connections.
    pub fn open_connections(&self) -> usize {
        self.shared.conns.lock().unwrap().iter().filter(|c| c.alive.load(Ordering::SeqCst)).count()
    }

    /// From now on, frames on the connections open now are written `lag` after they were sent
    /// (new connections are not delayed): the old connection falls behind the new one.
    pub fn lag_open_connections(&self, lag: Duration) {
        for c in self.shared.conns.lock().unwrap().iter() {
            c.lag.store(lag.as_micros() as u64, Ordering::SeqCst);
        }
    }

    /// Connections opened from now on write every frame `lag` late (a new connection behind the
    /// old one).
    pub fn lag_new_connections(&self, lag: Duration) {
        self.shared.new_lag.store(lag.as_micros() as u64, Ordering::SeqCst);
    }

    /// Sends a serverShutdown event on every open connection, and closes them `close_after` later.
    pub fn server_shutdown(&self, close_after: Duration) {
        let ev = format!(r#"{{"stream":"!serverShutdown","data":{{"e":"serverShutdown","E":{}}}}}"#, now_us());
        let conns: Vec<Sender<Cmd>> = {
            let c = self.shared.conns.lock().unwrap();
            c.iter().filter(|c| c.alive.load(Ordering::SeqCst)).map(|c| c.tx.clone()).collect()
        };
        for tx in &conns {
            let _ = tx.send(Cmd::Text(ev.clone()));
        }
        thread::spawn(move || {
            thread::sleep(close_after);
            for tx in conns {
                let _ = tx.send(Cmd::Close);
            }
        });
    }

    /// Answer the next depth requests with these (status, Retry-After seconds) instead.
    pub fn reject_depth(&self, answers: &[(u16, u64)]) {
        self.shared.depth_rejects.lock().unwrap().extend(answers.iter().copied());
    }

    /// When each depth request arrived.
    pub fn depth_times(&self) -> Vec<Instant> {
        self.shared.depth_times.lock().unwrap().clone()
    }

    /// Pong payloads received.
    pub fn pongs(&self) -> Vec<Vec<u8>> {
        self.shared.pongs.lock().unwrap().clone()
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A throwaway CA and a leaf for 127.0.0.1/localhost signed by it (webpki refuses a CA
/// certificate as the server's own, so one self-signed certificate would not do).
fn tls_material() -> (Arc<rustls::ServerConfig>, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    ca.distinguished_name.push(DnType::CommonName, "tickfeed test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.distinguished_name.push(DnType::CommonName, "tickfeed test server");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let chain = vec![
        rustls::pki_types::CertificateDer::from(leaf_cert.der().to_vec()),
        rustls::pki_types::CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let key =
        rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    (Arc::new(config), ca_cert.pem())
}

// ---- The market ----

fn market_loop(sh: Arc<Shared>, mut rng: Rng) {
    let mut next = Instant::now();
    while !sh.stop.load(Ordering::SeqCst) {
        next += sh.cfg.interval;
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        } else {
            next = now;
        }
        if sh.paused.load(Ordering::SeqCst) {
            continue;
        }
        let mut m = sh.market.lock().unwrap();
        let conns = sh.conns.lock().unwrap();
        let mut flip = false;
        let mut frag = || {
            flip = !flip;
            flip && sh.fragment.load(Ordering::Relaxed)
        };
        for s in m.iter_mut() {
            while s.skip > 0 {
                // A diff the exchange applies but never sends: the handler must find the gap.
                let _ = step_book(s, &mut rng);
                s.skip -= 1;
            }
            let (first, diff) = step_book(s, &mut rng);
            let e = now_us();
            let depth = format!(
                r#"{{"stream":"{l}@depth@100ms","data":{{"e":"depthUpdate","E":{e},"s":"{u}","U":{first},"u":{last},"b":[{b}],"a":[{a}]}}}}"#,
                l = s.lower,
                u = s.upper,
                last = s.last_id,
                b = diff.0.join(","),
                a = diff.1.join(",")
            );
            send(&conns, &format!("{}@depth@100ms", s.lower), &depth, frag());
            s.trade_id += 1;
            s.agg_id += 1;
            let price = dec8((MID + rng.below(3) as i64 - 1) * TICK_UNITS);
            let qty = dec8(1 + rng.below(100_000_000) as i64);
            let m_ = rng.below(2) == 0;
            let trade = format!(
                r#"{{"stream":"{l}@trade","data":{{"e":"trade","E":{e},"s":"{u}","t":{t},"p":"{price}","q":"{qty}","T":{e},"m":{m_},"M":true}}}}"#,
                l = s.lower,
                u = s.upper,
                t = s.trade_id
            );
            send(&conns, &format!("{}@trade", s.lower), &trade, frag());
            let agg = format!(
                r#"{{"stream":"{l}@aggTrade","data":{{"e":"aggTrade","E":{e},"s":"{u}","a":{a},"p":"{price}","q":"{qty}","f":{t},"l":{t},"T":{e},"m":{m_},"M":true}}}}"#,
                l = s.lower,
                u = s.upper,
                a = s.agg_id,
                t = s.trade_id
            );
            send(&conns, &format!("{}@aggTrade", s.lower), &agg, frag());
            let (bb, bq) = s.book.bids.iter().next_back().map_or((0, 0), |(&p, &q)| (p, q));
            let (ab, aq) = s.book.asks.iter().next().map_or((0, 0), |(&p, &q)| (p, q));
            let ticker = format!(
                r#"{{"stream":"{l}@bookTicker","data":{{"u":{id},"s":"{u}","b":"{}","B":"{}","a":"{}","A":"{}"}}}}"#,
                dec8(bb * TICK_UNITS),
                dec8(bq),
                dec8(ab * TICK_UNITS),
                dec8(aq),
                l = s.lower,
                u = s.upper,
                id = s.last_id
            );
            send(&conns, &format!("{}@bookTicker", s.lower), &ticker, frag());
        }
    }
}

/// One diff: 1-4 level changes under 1-3 update ids. Returns `U` and the bid/ask JSON levels.
fn step_book(s: &mut SymMarket, rng: &mut Rng) -> (u64, (Vec<String>, Vec<String>)) {
    let first = s.last_id + 1;
    s.last_id += 1 + rng.below(3);
    let (mut b, mut a) = (Vec::new(), Vec::new());
    for _ in 0..1 + rng.below(4) {
        let bid = rng.below(2) == 0;
        let k = rng.below(BAND as u64) as i64;
        let qty = if rng.below(10) < 3 { 0 } else { 1 + rng.below(500_000_000) as i64 };
        let (side, tick, out) =
            if bid { (&mut s.book.bids, MID - 1 - k, &mut b) } else { (&mut s.book.asks, MID + 1 + k, &mut a) };
        if qty == 0 {
            side.remove(&tick);
        } else {
            side.insert(tick, qty);
        }
        out.push(format!(r#"["{}","{}"]"#, dec8(tick * TICK_UNITS), dec8(qty)));
    }
    s.history.push_back((s.last_id, s.book.clone()));
    if s.history.len() > 20_000 {
        s.history.pop_front();
    }
    (first, (b, a))
}

fn send(conns: &[ConnHandle], stream: &str, frame: &str, fragment: bool) {
    for c in conns {
        if c.alive.load(Ordering::Relaxed) && c.streams.iter().any(|s| s == stream) {
            let cmd = if fragment { Cmd::Fragmented(frame.to_owned(), 3) } else { Cmd::Text(frame.to_owned()) };
            let _ = c.tx.send(cmd);
        }
    }
}

// ---- Connections ----

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn accept_loop(sh: Arc<Shared>, listener: TcpListener) {
    while !sh.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((sock, _)) => {
                let sh = sh.clone();
                thread::spawn(move || {
                    let _ = serve(sh, sock);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(2)),
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn serve(sh: Arc<Shared>, sock: TcpStream) -> io::Result<()> {
    sock.set_nonblocking(false)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    sock.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut stream = match &sh.tls {
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(cfg.clone()).map_err(io::Error::other)?;
            Stream::Tls(Box::new(rustls::StreamOwned::new(conn, sock)))
        }
        None => Stream::Plain(sock),
    };
    // The request head.
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut b)?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let target = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let params: HashMap<&str, &str> = query.split('&').filter_map(|kv| kv.split_once('=')).collect();
    if headers.get("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        if path != "/stream" {
            return respond(&mut stream, 404, "Not Found", &[], r#"{"code":-1,"msg":"no such stream path"}"#);
        }
        let key = headers.get("sec-websocket-key").cloned().unwrap_or_default();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        write!(
            stream,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )?;
        stream.flush()?;
        let streams: Vec<String> =
            params.get("streams").map(|s| s.split('/').map(str::to_owned).collect()).unwrap_or_default();
        return websocket(sh, stream, streams);
    }
    match path {
        "/api/v3/exchangeInfo" => {
            sh.counters.exchange_info.fetch_add(1, Ordering::SeqCst);
            let sym = params.get("symbol").copied().unwrap_or("");
            let known = sh.market.lock().unwrap().iter().any(|s| s.upper == sym);
            if !known {
                return respond(&mut stream, 400, "Bad Request", &[], r#"{"code":-1121,"msg":"Invalid symbol."}"#);
            }
            let body = format!(
                r#"{{"timezone":"UTC","symbols":[{{"symbol":"{sym}","status":"TRADING","filters":[{{"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"}},{{"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"}}]}}]}}"#
            );
            respond(&mut stream, 200, "OK", &[("X-MBX-USED-WEIGHT-1M", "20")], &body)
        }
        "/api/v3/depth" => {
            sh.counters.depth_requests.fetch_add(1, Ordering::SeqCst);
            sh.depth_times.lock().unwrap().push(Instant::now());
            if let Some((status, ra)) = sh.depth_rejects.lock().unwrap().pop_front() {
                sh.counters.rejected.fetch_add(1, Ordering::SeqCst);
                let ra = ra.to_string();
                return respond(
                    &mut stream,
                    status,
                    "Too Many Requests",
                    &[("Retry-After", &ra)],
                    r#"{"code":-1003,"msg":"Too many requests."}"#,
                );
            }
            let sym = params.get("symbol").copied().unwrap_or("");
            let limit: usize = params.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
            let body = {
                let m = sh.market.lock().unwrap();
                match m.iter().find(|s| s.upper == sym) {
                    None => None,
                    Some(s) => {
                        let lv = |it: &mut dyn Iterator<Item = (&i64, &i64)>| {
                            it.take(limit)
                                .map(|(&p, &q)| format!(r#"["{}","{}"]"#, dec8(p * TICK_UNITS), dec8(q)))
                                .collect::<Vec<_>>()
                                .join(",")
                        };
                        Some(format!(
                            r#"{{"lastUpdateId":{},"bids":[{}],"asks":[{}]}}"#,
                            s.last_id,
                            lv(&mut s.book.bids.iter().rev()),
                            lv(&mut s.book.asks.iter())
                        ))
                    }
                }
            };
            match body {
                Some(b) => respond(&mut stream, 200, "OK", &[("X-MBX-USED-WEIGHT-1M", "50")], &b),
                None => respond(&mut stream, 400, "Bad Request", &[], r#"{"code":-1121,"msg":"Invalid symbol."}"#),
            }
        }
        _ => respond(&mut stream, 404, "Not Found", &[], "{}"),
    }
}

fn respond(s: &mut Stream, status: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> io::Result<()> {
    let mut h = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    s.write_all(h.as_bytes())?;
    s.write_all(body.as_bytes())?;
    s.flush()?;
    if let Stream::Tls(t) = s {
        t.conn.send_close_notify();
        let _ = t.flush();
    }
    Ok(())
}

fn websocket(sh: Arc<Shared>, stream: Stream, streams: Vec<String>) -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let alive = Arc::new(AtomicBool::new(true));
    let lag = Arc::new(AtomicU64::new(sh.new_lag.load(Ordering::SeqCst)));
    let id = sh.next_conn.fetch_add(1, Ordering::SeqCst);
    // Registered under the market lock so the first frame sent is one after the registration.
    {
        let _m = sh.market.lock().unwrap();
        sh.conns.lock().unwrap().push(ConnHandle { id, tx, streams, alive: alive.clone(), lag: lag.clone() });
    }
    sh.counters.ws_connections.fetch_add(1, Ordering::SeqCst);
    stream.tcp().set_read_timeout(Some(Duration::from_millis(2)))?;
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
    let r = ws_loop(&sh, &mut ws, &rx, &lag);
    alive.store(false, Ordering::SeqCst);
    sh.conns.lock().unwrap().retain(|c| c.id != id);
    r
}

fn ws_loop(sh: &Shared, ws: &mut WebSocket<Stream>, rx: &Receiver<Cmd>, lag: &AtomicU64) -> io::Result<()> {
    let err = |e: tungstenite::Error| io::Error::other(e.to_string());
    let mut closing: Option<Instant> = None;
    let mut delayed: VecDeque<(Instant, Cmd)> = VecDeque::new();
    loop {
        if sh.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        if closing.is_some_and(|t| t.elapsed() > Duration::from_millis(500)) {
            return Ok(());
        }
        // Outgoing: everything queued, each after the connection's lag.
        let mut wrote = false;
        let mut got = false;
        loop {
            match rx.recv_timeout(if got { Duration::ZERO } else { Duration::from_millis(1) }) {
                Ok(c) => delayed.push_back((Instant::now(), c)),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            got = true;
        }
        let lag = Duration::from_micros(lag.load(Ordering::Relaxed));
        while delayed.front().is_some_and(|(t, _)| t.elapsed() >= lag) {
            let Some((_, cmd)) = delayed.pop_front() else { break };
            if closing.is_some() {
                continue;
            }
            wrote = true;
            match cmd {
                Cmd::Text(t) => ws.write(Message::text(t)).map_err(err)?,
                Cmd::Fragmented(t, n) => {
                    let b = t.as_bytes();
                    let n = n.clamp(1, b.len().max(1));
                    let size = b.len().div_ceil(n);
                    let chunks: Vec<&[u8]> = b.chunks(size.max(1)).collect();
                    for (i, c) in chunks.iter().enumerate() {
                        let op = if i == 0 { Data::Text } else { Data::Continue };
                        let fin = i + 1 == chunks.len();
                        ws.write(Message::Frame(Frame::message(c.to_vec(), OpCode::Data(op), fin))).map_err(err)?;
                    }
                }
                Cmd::Binary(b) => ws.write(Message::Binary(Bytes::from(b))).map_err(err)?,
                Cmd::Ping(p) => ws.write(Message::Ping(Bytes::from(p))).map_err(err)?,
                Cmd::Close => {
                    ws.write(Message::Close(Some(CloseFrame { code: CloseCode::Away, reason: "going away".into() })))
                        .map_err(err)?;
                    closing = Some(Instant::now());
                }
                Cmd::Reset => {
                    let _ = ws.get_ref().tcp().shutdown(std::net::Shutdown::Both);
                    return Ok(());
                }
                Cmd::Raw(bytes) => {
                    ws.flush().map_err(err)?;
                    ws.get_mut().write_all(&bytes)?;
                    ws.get_mut().flush()?;
                }
            }
        }
        if wrote {
            ws.flush().map_err(err)?;
        }
        // Incoming: pongs, the close reply.
        match ws.read() {
            Ok(Message::Pong(p)) => sh.pongs.lock().unwrap().push(p.to_vec()),
            Ok(Message::Close(_)) => {
                let _ = ws.flush();
                return Ok(());
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return Ok(()),
            Err(e) => return Err(err(e)),
        }
    }
}
