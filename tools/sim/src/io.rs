//! The byte stream under one client connection: plain TCP or rustls over TCP, with a replay
//! buffer for bytes read past an HTTP request head, and the socket-level knobs the simulator
//! needs (non-blocking toggles for polling reads, timeouts, an abortive reset).
//!
//! This is the only module besides `tls` that touches rustls types, and it does not parse HTTP or
//! websocket frames.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

/// Plain or TLS transport.
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

/// A client connection's byte stream.
pub(crate) struct Io {
    transport: Transport,
    /// Bytes already read from the transport but not yet consumed (after a request head).
    pending: Vec<u8>,
    pos: usize,
    /// Time spent inside the transport's write and flush calls: mostly waiting for the client to
    /// make room, which is how a slow-consumer drop is told apart from a slow simulator.
    write_wait: Duration,
}

impl Io {
    /// Wraps a transport.
    pub fn new(transport: Transport) -> Io {
        Io { transport, pending: Vec::new(), pos: 0, write_wait: Duration::ZERO }
    }

    /// Total time spent in writes and flushes so far.
    pub fn write_wait(&self) -> Duration {
        self.write_wait
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match &self.transport {
            Transport::Plain(s) => s,
            Transport::Tls(s) => &s.sock,
        }
    }

    /// Puts bytes back in front of the stream (read too far while looking for a request head).
    pub fn unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut v = bytes.to_vec();
        v.extend_from_slice(&self.pending[self.pos..]);
        self.pending = v;
        self.pos = 0;
    }

    /// Sets both socket timeouts (`None`: block forever).
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(read)?;
        self.tcp().set_write_timeout(write)
    }

    /// Non-blocking on or off (used to poll for inbound frames between writes).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nonblocking(on)
    }
}

/// Sets SO_LINGER {on, 0} so the next close sends a TCP RST. Best effort.
pub(crate) fn set_linger_zero(tcp: &TcpStream) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: `fd` is a valid open socket owned by `tcp` for the duration of this call, and
        // the option value points to a properly initialised `libc::linger` of the given size.
        unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(unix))]
    let _ = tcp;
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.pending.len() {
            let n = buf.len().min(self.pending.len() - self.pos);
            buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.pending.len() {
                self.pending.clear();
                self.pos = 0;
            }
            return Ok(n);
        }
        match &mut self.transport {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t = Instant::now();
        let r = match &mut self.transport {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        };
        self.write_wait += t.elapsed();
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        let t = Instant::now();
        let r = match &mut self.transport {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        };
        self.write_wait += t.elapsed();
        r
    }
}
