//! One websocket connection over a non-blocking mio socket: TCP connect, optional TLS, the
//! opening handshake, then frames in and pongs/close replies out.
//!
//! The connection owns its socket, its TLS session, the sans-IO websocket codec and one fixed
//! read buffer; it answers pings and closes itself and hands every other event to the caller's
//! sink as a slice of that buffer (unfragmented frames are never copied). It does not decide when
//! to connect, reconnect, time out or switch: the event loop owns those decisions, reads the clock
//! and passes instants in. Every failure is a [`ConnError`] value ending the connection; nothing
//! a server sends can panic it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::net::tls::{SessionError, TlsError, TlsSession, TlsSetup};
use crate::net::tsc::StageClock;
use crate::ws::{Decoder, Encoder, Endpoint, Event, Handshake, HandshakeStatus, Limits, WsError};

/// Free space the read buffer keeps after its largest frame: one socket read's worth.
const READ_CHUNK: usize = 64 * 1024;

/// Reads per [`Conn::on_readable`] call before yielding to the loop (timers, the other
/// connection); the connection stays marked readable and is serviced again next iteration.
const MAX_READS_PER_CALL: usize = 16;

/// Most bytes a connection queues for writing before the socket takes them. Once open, tickfeed
/// writes only pongs (at most [`MAX_PONGS_PER_SEC`]) and one close, each a control frame of at
/// most [`MAX_CONTROL_FRAME`] bytes, so a healthy peer never lets more than a few hundred bytes
/// wait; 64 KiB is hundreds of seconds of replies. A peer that stops reading fills it, and the
/// connection ends ([`ConnError::WriteBacklog`]) instead of the queue growing for as long as the
/// peer keeps sending pings. (With TLS the session's record queue has the same bound: rustls'
/// during the handshake, the record layer's preallocated buffer after it.)
pub(crate) const MAX_QUEUED_WRITE: usize = 64 * 1024;

/// The largest control frame tickfeed writes: header, mask key and a 125-byte payload.
const MAX_CONTROL_FRAME: usize = 2 + 4 + 125;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// TCP up; TLS and/or the websocket upgrade in progress.
    Handshaking,
    /// Upgraded: frames flow.
    Open,
}

/// Why a connection ended. Each is logged in one line and followed by a reconnect.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// The TCP connect failed.
    Connect(io::Error),
    /// TLS failed (certificate, alert, protocol), as rustls said.
    Tls(TlsError),
    /// A socket error after connecting.
    Io(io::Error),
    /// The server closed the TCP connection.
    Eof {
        /// The phase it happened in.
        phase: Phase,
    },
    /// The websocket upgrade failed (refusal with status line and body, or a bad response).
    Handshake(WsError),
    /// The server broke RFC 6455.
    Protocol(WsError),
    /// The server does not read: replies to its pings and close would queue more than
    /// [`MAX_QUEUED_WRITE`] bytes.
    WriteBacklog {
        /// Bytes waiting for the socket when the connection gave up.
        queued: usize,
    },
    /// The server sent a close frame (answered).
    Closed {
        /// Its status code.
        code: Option<u16>,
        /// Its reason.
        reason: String,
    },
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Connect(e) => write!(f, "connect failed: {}", io_text(e)),
            ConnError::Tls(e) => write!(f, "TLS: {e}"),
            ConnError::Io(e) => write!(f, "socket error: {}", io_text(e)),
            ConnError::Eof { phase: Phase::Open } => f.write_str("server closed the connection"),
            ConnError::Eof { phase } => write!(f, "server closed the connection during {phase:?}"),
            ConnError::Handshake(e) | ConnError::Protocol(e) => write!(f, "{e}"),
            ConnError::WriteBacklog { queued } => write!(
                f,
                "server is not reading what we send: {queued} bytes of replies unsent (limit {MAX_QUEUED_WRITE})"
            ),
            ConnError::Closed { code, reason } => {
                write!(f, "server sent close")?;
                if let Some(c) = code {
                    write!(f, " {c}")?;
                }
                if !reason.is_empty() {
                    write!(f, " ({reason})")?;
                }
                Ok(())
            }
        }
    }
}

/// An `io::Error`'s text without the " (os error N)" tail, for one-line messages.
pub(crate) fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

impl From<SessionError> for ConnError {
    fn from(e: SessionError) -> ConnError {
        match e {
            SessionError::Io(e) => ConnError::Io(e),
            SessionError::Tls(e) => ConnError::Tls(e),
        }
    }
}

/// What the connection tells its owner.
#[derive(Debug)]
pub(crate) enum ConnEvent<'a> {
    /// The upgrade succeeded: frames follow.
    Opened,
    /// A complete text message, with the instant the socket read that completed it returned.
    Text(&'a [u8], Instant),
    /// A complete binary message (SBE streams; Binance's JSON streams send none), with the
    /// instant the socket read that completed it returned.
    Binary(&'a [u8], Instant),
    /// A ping; `answered`: the same-payload pong is queued (false only after our own close).
    Ping {
        /// Whether a pong was queued.
        answered: bool,
    },
    /// The frames of one socket read have all been delivered: a good moment to flush output.
    /// With the time that read spent in each stage before the pipeline.
    BatchEnd(Instant, StageNs),
}

/// Nanoseconds one socket read spent in the stages before the pipeline: the read syscall, TLS,
/// and websocket decoding of its frames. All 0 when the connection has no stage clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StageNs {
    /// The read syscall.
    pub read: u64,
    /// TLS record processing and decryption (0 on plain TCP).
    pub tls: u64,
    /// Websocket frame decoding.
    pub ws: u64,
}

/// Binance allows 5 incoming messages per second per connection, pings, pongs and control
/// messages included; going over disconnects, and repeat offenders are banned. The only messages
/// tickfeed sends on a stream connection are pongs (and one close), so it queues at most this many
/// pongs in any second, leaving room for the close.
pub(crate) const MAX_PONGS_PER_SEC: usize = 4;

/// The times of the last [`MAX_PONGS_PER_SEC`] pongs: one more is allowed once the oldest is a
/// second old.
#[derive(Debug, Default)]
struct SendWindow {
    times: [Option<Instant>; MAX_PONGS_PER_SEC],
    next: usize,
}

impl SendWindow {
    /// Takes a send at `t` if the law allows it.
    fn allow(&mut self, t: Instant) -> bool {
        let slot = &mut self.times[self.next];
        if slot.is_some_and(|old| t.saturating_duration_since(old) < std::time::Duration::from_secs(1)) {
            return false;
        }
        *slot = Some(t);
        self.next = (self.next + 1) % MAX_PONGS_PER_SEC;
        true
    }
}

/// One websocket connection.
pub(crate) struct Conn {
    /// Serial number (1, 2, ...) for log lines.
    pub serial: u64,
    token: Token,
    addr: SocketAddr,
    sock: TcpStream,
    tls: Option<TlsSession>,
    phase: Phase,
    hs: Handshake,
    request: Vec<u8>,
    dec: Decoder,
    enc: Encoder,
    /// When the last pongs were queued (the 5-messages-per-second law).
    pongs: SendWindow,
    rbuf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Plaintext waiting for the socket (plain TCP) or for the TLS session.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Readiness seen but not yet read to `WouldBlock`.
    readable: bool,
    /// When the upgrade completed.
    pub opened: Option<Instant>,
    /// The last socket read that returned bytes.
    pub last_rx: Instant,
    /// Times the read, TLS and websocket stages when set.
    stage_clock: Option<StageClock>,
    /// Stage clock ticks of the current read: read, TLS, websocket.
    stage_ticks: [u64; 3],
}

/// Everything needed to open connections to one websocket endpoint.
#[derive(Clone)]
pub(crate) struct ConnSpec {
    /// Host for `Host:` and SNI (IPv6 in brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS configuration when `wss://`.
    pub tls: Option<TlsSetup>,
    /// Request target (`/stream?streams=...`).
    pub path: String,
    /// Frame and message size limits.
    pub limits: Limits,
    /// Times the read, TLS and websocket stages of each read (see [`StageNs`]).
    pub stage_clock: Option<StageClock>,
    /// `--feed sbe`: the API key of the `X-MBX-APIKEY` handshake header.
    pub api_key: Option<crate::live::sbe::ApiKey>,
}

impl Conn {
    /// Starts a non-blocking connect to `addr` and registers the socket under `token`.
    pub(crate) fn connect(
        spec: &ConnSpec,
        addr: SocketAddr,
        serial: u64,
        token: Token,
        registry: &Registry,
        now: Instant,
        seed: u64,
    ) -> Result<Conn, ConnError> {
        let mut sock = TcpStream::connect(addr).map_err(ConnError::Connect)?;
        registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE).map_err(ConnError::Connect)?;
        let tls = match &spec.tls {
            Some(t) => Some(t.session(&spec.host).map_err(ConnError::Tls)?),
            None => None,
        };
        let hs = Handshake::random();
        let mut request = Vec::with_capacity(512);
        hs.write_request_with_key(
            &Endpoint { host: &spec.host, port: spec.port, tls: spec.tls.is_some(), path: &spec.path },
            spec.api_key.as_ref().map(crate::live::sbe::ApiKey::expose),
            &mut request,
        )
        .map_err(ConnError::Handshake)?;
        let dec = Decoder::new(spec.limits);
        let cap = dec.buffer_len() + READ_CHUNK;
        Ok(Conn {
            serial,
            token,
            addr,
            sock,
            tls,
            phase: Phase::Connecting,
            hs,
            request,
            dec,
            enc: Encoder::new(seed),
            pongs: SendWindow::default(),
            rbuf: vec![0u8; cap].into_boxed_slice(),
            start: 0,
            end: 0,
            wbuf: Vec::with_capacity(4096),
            wpos: 0,
            readable: false,
            opened: None,
            last_rx: now,
            stage_clock: spec.stage_clock,
            stage_ticks: [0; 3],
        })
    }

    /// The mio token.
    pub(crate) fn token(&self) -> Token {
        self.token
    }

    /// The peer address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The phase.
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether readiness is pending (read again without waiting for an event).
    pub(crate) fn is_readable(&self) -> bool {
        self.readable && self.phase != Phase::Connecting
    }

    /// Marks readiness from a poll event.
    pub(crate) fn set_readable(&mut self) {
        self.readable = true;
    }

    /// Handles a writable event: completes the TCP connect (then sends the TLS hello and the
    /// upgrade request), or flushes pending bytes.
    pub(crate) fn on_writable(&mut self) -> Result<(), ConnError> {
        if self.phase == Phase::Connecting {
            if let Some(e) = self.sock.take_error().map_err(ConnError::Connect)? {
                return Err(ConnError::Connect(e));
            }
            match self.sock.peer_addr() {
                Ok(_) => {}
                // Not connected yet (a spurious wakeup): wait for the next writable event.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(ConnError::Connect(e)),
            }
            // Small frames (pongs) must not wait for Nagle.
            self.sock.set_nodelay(true).map_err(ConnError::Io)?;
            self.phase = Phase::Handshaking;
            let req = std::mem::take(&mut self.request);
            self.wbuf.extend_from_slice(&req);
            // Data may already be waiting (a fast server); look for it.
            self.readable = true;
        }
        self.flush()
    }

    /// Sends what is queued: plaintext into rustls or the socket, then TLS records. Stops at
    /// `WouldBlock`; the next writable event continues.
    pub(crate) fn flush(&mut self) -> Result<(), ConnError> {
        if self.phase == Phase::Connecting {
            return Ok(());
        }
        match &mut self.tls {
            Some(tls) => {
                if !self.wbuf.is_empty() {
                    // The session queues at most 64 KiB of records (rustls' default limit during
                    // the handshake, MAX_QUEUED_WRITE after it) and refuses more with
                    // `WriteZero`: the peer is not reading.
                    tls.write(&self.wbuf).map_err(|e| match e.kind() {
                        io::ErrorKind::WriteZero => ConnError::WriteBacklog { queued: self.wbuf.len() },
                        _ => ConnError::Io(e),
                    })?;
                    self.wbuf.clear();
                }
                tls.flush(&mut self.sock).map_err(ConnError::Io)?;
            }
            None => {
                while self.wpos < self.wbuf.len() {
                    match self.sock.write(&self.wbuf[self.wpos..]) {
                        Ok(0) => return Err(ConnError::Eof { phase: self.phase }),
                        Ok(n) => self.wpos += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(ConnError::Io(e)),
                    }
                }
                self.wbuf.clear();
                self.wpos = 0;
            }
        }
        Ok(())
    }

    fn read_some(&mut self) -> Result<usize, SessionError> {
        let dst = &mut self.rbuf[self.end..];
        let clock = self.stage_clock;
        match &mut self.tls {
            Some(tls) => {
                let mut t = [0; 2];
                let r = tls.read(&mut self.sock, dst, clock, &mut t);
                self.stage_ticks[0] += t[0];
                self.stage_ticks[1] += t[1];
                r
            }
            None => {
                let t0 = clock.map(|c| c.now());
                let r = self.sock.read(dst).map_err(SessionError::Io);
                if let (Some(c), Some(t0)) = (clock, t0) {
                    self.stage_ticks[0] += c.now().saturating_sub(t0);
                }
                r
            }
        }
    }

    /// The stage times gathered since the last call, in ns.
    fn take_stage_ns(&mut self) -> StageNs {
        let t = std::mem::take(&mut self.stage_ticks);
        match self.stage_clock {
            Some(c) => StageNs { read: c.ns(t[0]), tls: c.ns(t[1]), ws: c.ns(t[2]) },
            None => StageNs::default(),
        }
    }

    /// Makes room at the back of the read buffer: rewinds when empty, else moves the partial
    /// frame to the front once the free tail is smaller than one read.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.rbuf.len() - self.end < READ_CHUNK && self.start > 0 {
            self.rbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Reads what the socket has (at most a bounded number of reads), completes the upgrade if
    /// under way, and delivers every complete message to `sink`, answering pings and closes.
    /// Returns with the connection still marked readable if it stopped early.
    pub(crate) fn on_readable<F: FnMut(ConnEvent<'_>)>(&mut self, sink: &mut F) -> Result<(), ConnError> {
        if self.phase == Phase::Connecting {
            return Ok(());
        }
        for _ in 0..MAX_READS_PER_CALL {
            self.make_room();
            let n = match self.read_some() {
                Ok(0) => {
                    if self.phase == Phase::Handshaking {
                        return Err(ConnError::Handshake(self.hs.eof(&self.rbuf[..self.end])));
                    }
                    return Err(ConnError::Eof { phase: self.phase });
                }
                Ok(n) => n,
                Err(SessionError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    // TLS may have handshake records to send after processing what it read.
                    return self.flush();
                }
                Err(SessionError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            // The one clock read per socket read: the bytes are in hand (decrypted, with TLS).
            // It is the receive time of every frame this read completes and the start of their
            // processing time.
            let t = Instant::now();
            self.end += n;
            self.last_rx = t;
            if self.phase == Phase::Handshaking {
                match self.hs.parse_response(&self.rbuf[..self.end]).map_err(ConnError::Handshake)? {
                    HandshakeStatus::NeedMore => {
                        if self.end == self.rbuf.len() {
                            return Err(ConnError::Handshake(WsError::HandshakeTooLarge { limit: self.rbuf.len() }));
                        }
                        continue;
                    }
                    HandshakeStatus::Done { consumed } => {
                        self.start = consumed;
                        self.phase = Phase::Open;
                        self.opened = Some(t);
                        sink(ConnEvent::Opened);
                    }
                }
            }
            let closed = self.decode_all(t, sink)?;
            let stages = self.take_stage_ns();
            sink(ConnEvent::BatchEnd(t, stages));
            self.flush()?;
            if let Some((code, reason)) = closed {
                return Err(ConnError::Closed { code, reason });
            }
            // Read on until the socket says WouldBlock, even after a short read. Taking a short
            // read as proof the socket was drained (and waiting for the next edge) lost
            // readiness under load: with two connections on a busy machine, one connection's
            // receive queue filled while epoll reported nothing more for it, and the connection
            // went silent with data waiting (tests/live_redundancy.rs caught it, 5 runs in 10
            // with a CPU hog beside them; 0 in 10 reading to WouldBlock).
        }
        Ok(())
    }

    /// Delivers every complete message in the buffer; returns the server's close if one came.
    #[allow(clippy::type_complexity)]
    fn decode_all<F: FnMut(ConnEvent<'_>)>(
        &mut self,
        t: Instant,
        sink: &mut F,
    ) -> Result<Option<(Option<u16>, String)>, ConnError> {
        loop {
            let t0 = self.stage_clock.map(|c| c.now());
            let d = self.dec.decode(&self.rbuf[self.start..self.end]).map_err(ConnError::Protocol)?;
            if let (Some(c), Some(t0)) = (self.stage_clock, t0) {
                self.stage_ticks[2] += c.now().saturating_sub(t0);
            }
            let consumed = d.consumed;
            let Some(event) = d.event else {
                self.start += consumed;
                return Ok(None);
            };
            // Pings and closes are answered before anything else is done with them, but never more
            // pongs than Binance's law allows us to send (a ping flood gets some unanswered), and
            // never onto a queue the peer has stopped taking.
            let reply = match event {
                Event::Ping(_) => self.pongs.allow(t),
                Event::Close { .. } => true,
                Event::Text(_) | Event::Binary(_) | Event::Pong(_) => false,
            };
            let replied = if reply && !self.enc.is_closed() {
                let queued = self.wbuf.len() - self.wpos;
                if queued + MAX_CONTROL_FRAME > MAX_QUEUED_WRITE {
                    return Err(ConnError::WriteBacklog { queued });
                }
                self.enc.reply_to(&event, &mut self.wbuf).map_err(ConnError::Protocol)?
            } else {
                false
            };
            match event {
                Event::Text(s) => sink(ConnEvent::Text(s.as_bytes(), t)),
                Event::Binary(b) => sink(ConnEvent::Binary(b, t)),
                Event::Ping(_) => sink(ConnEvent::Ping { answered: replied }),
                Event::Pong(_) => {}
                Event::Close { code, reason } => {
                    let reason = reason.to_owned();
                    self.start += consumed;
                    return Ok(Some((code, reason)));
                }
            }
            self.start += consumed;
        }
    }

    /// Ends the connection politely where possible: a close frame (when open), TLS close_notify,
    /// one non-blocking flush, then deregisters. Never waits.
    pub(crate) fn shutdown(mut self, registry: &Registry) {
        if self.phase == Phase::Open && !self.enc.is_closed() {
            let _ = self.enc.close(1000, "", &mut self.wbuf);
        }
        let _ = self.flush();
        if let Some(tls) = &mut self.tls {
            tls.close();
            let _ = tls.flush(&mut self.sock);
        }
        let _ = registry.deregister(&mut self.sock);
    }

    /// Drops the connection without a goodbye (after an error).
    pub(crate) fn abort(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.sock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn at_most_four_pongs_in_any_second() {
        let t0 = Instant::now();
        let mut w = SendWindow::default();
        let ms = Duration::from_millis;
        // A ping flood: one every 10 ms for 3 s.
        let sent: Vec<Duration> = (0..300).map(|i| ms(10 * i)).filter(|&d| w.allow(t0 + d)).collect();
        for (i, a) in sent.iter().enumerate() {
            let in_second = sent[i..].iter().take_while(|&&b| b - *a < ms(1000)).count();
            assert!(in_second <= MAX_PONGS_PER_SEC, "{in_second} pongs within a second of {a:?}");
        }
        assert_eq!(sent.len(), 12, "4 a second are still answered: {sent:?}");
        // Binance's own pings (every 20 s) are always answered.
        let mut w = SendWindow::default();
        assert!((0..10).all(|i| w.allow(t0 + Duration::from_secs(20 * i))));
    }

    /// A peer that pings within the law but never reads: the pongs pile up unsent (here nothing
    /// is ever flushed, as when the socket never turns writable) until the bound ends the
    /// connection; the queue never passes it.
    #[test]
    fn replies_a_peer_never_reads_end_the_connection_at_the_bound() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let spec = ConnSpec {
            host: "127.0.0.1".into(),
            port: addr.port(),
            tls: None,
            path: "/".into(),
            limits: Limits::default(),
            stage_clock: Some(StageClock::monotonic()),
            api_key: None,
        };
        let t0 = Instant::now();
        let mut c = Conn::connect(&spec, addr, 1, Token(0), poll.registry(), t0, 7).unwrap();
        let mut pings = Vec::new();
        for _ in 0..MAX_PONGS_PER_SEC {
            pings.extend_from_slice(&[0x89, 125]);
            pings.extend_from_slice(&[b'p'; 125]);
        }
        let mut ended = None;
        for s in 0..2 * MAX_QUEUED_WRITE as u64 / 125 {
            c.rbuf[..pings.len()].copy_from_slice(&pings);
            (c.start, c.end) = (0, pings.len());
            let r = c.decode_all(t0 + Duration::from_secs(s), &mut |_| {});
            assert!(c.wbuf.len() - c.wpos <= MAX_QUEUED_WRITE, "{} bytes queued", c.wbuf.len());
            if let Err(e) = r {
                ended = Some(e);
                break;
            }
        }
        let e = ended.expect("the queue grew past its bound without ending the connection");
        assert!(matches!(e, ConnError::WriteBacklog { .. }), "{e}");
        assert!(e.to_string().contains("not reading"), "{e}");
        assert!(c.wbuf.len() > MAX_QUEUED_WRITE - MAX_CONTROL_FRAME, "ended early: {}", c.wbuf.len());
    }
}
