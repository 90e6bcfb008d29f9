//! Every rustls call tickfeed makes: the client configuration (ring, Mozilla's roots plus any
//! `--ca-file` roots), the websocket's TLS session over a non-blocking mio socket, and the TLS
//! layer handed to ureq for REST, so the websocket and REST trust exactly the same roots.
//!
//! The session lets rustls do the handshake, fed whole records from the session's own buffer;
//! after it, tickfeed's record layer (`src/net/record.rs`, docs/tls.md) decrypts in place and
//! encrypts with the traffic secrets rustls hands over. [`TlsSession::flush`] is called by the
//! connection after every read and write; a `WouldBlock` there waits for mio's WRITABLE. Nothing
//! here decides when to connect, retry or give up: a failure is
//! a [`TlsError`] (rustls's own error kept as it is, or the record layer's) or the socket's `io::Error`, for the
//! connection's owner to log and reconnect on. Not supported, by design:
//! client certificates, session resumption on the websocket (tickets are skipped), ALPN, TLS 1.3
//! KeyUpdate (an error: the connection reconnects).

use crate::net::conn::MAX_QUEUED_WRITE;
use crate::net::record::{Opened, RecordError, RecordLayer, HEADER_LEN, MAX_RECORD};
use crate::net::tsc::StageClock;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The TLS client configuration shared by the websocket and REST.
#[derive(Clone, Debug)]
pub struct TlsSetup {
    /// REST's configuration (ureq).
    config: Arc<ClientConfig>,
    /// The websocket's: the same, with secret extraction on (the record layer takes over from
    /// rustls after the handshake).
    ws_config: Arc<ClientConfig>,
    extra_roots: usize,
}

impl TlsSetup {
    /// Mozilla's public roots (webpki-roots), plus every certificate in `ca_file` (PEM) when
    /// given. An unreadable file, a file without a certificate, or a certificate rustls cannot use
    /// as a root is an error naming the file: a configuration error, not something to retry.
    pub fn new(ca_file: Option<&Path>) -> Result<TlsSetup, TlsConfigError> {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let mut extra_roots = 0;
        if let Some(path) = ca_file {
            for cert in read_pem_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|source| TlsConfigError::UnusableCertificate { path: path.to_owned(), source })?;
                extra_roots += 1;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Provider)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut ws_config = config.clone();
        ws_config.enable_secret_extraction = true;
        Ok(TlsSetup { config: Arc::new(config), ws_config: Arc::new(ws_config), extra_roots })
    }

    /// How many roots `--ca-file` added.
    pub fn extra_roots(&self) -> usize {
        self.extra_roots
    }

    /// A client session for `host` (a DNS name or an IP literal, without brackets), with SNI.
    pub(crate) fn session(&self, host: &str) -> Result<TlsSession, TlsError> {
        let name = server_name(host)?;
        let conn = ClientConnection::new(self.ws_config.clone(), name).map_err(TlsError::Rustls)?;
        Ok(TlsSession::new(conn))
    }

    /// The connector ureq uses for `https://` (see [`RestTlsConnector`]).
    pub(crate) fn rest_connector(&self) -> RestTlsConnector {
        RestTlsConnector { config: self.config.clone() }
    }
}

/// Why the TLS configuration could not be built: a configuration error (exit 2), never retried.
/// Its `Display` is one line naming the `--ca-file` path.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The CA file cannot be opened or read.
    Read {
        /// The `--ca-file` path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The CA file holds a PEM section that does not decode (bad base64, no END line).
    NotPem {
        /// The `--ca-file` path.
        path: PathBuf,
        /// The PEM reader's complaint.
        source: pem::Error,
    },
    /// The CA file holds no `CERTIFICATE` section.
    NoCertificate {
        /// The `--ca-file` path.
        path: PathBuf,
    },
    /// rustls refused a certificate of the CA file as a trust anchor.
    UnusableCertificate {
        /// The `--ca-file` path.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The crypto provider supports none of the protocol versions asked for (a build problem:
    /// ring and TLS 1.2/1.3 are always compiled in).
    Provider(rustls::Error),
}

impl std::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsConfigError::Read { path, source } => write!(f, "--ca-file {}: {source}", path.display()),
            TlsConfigError::NotPem { path, source } => {
                write!(f, "--ca-file {}: not a PEM file: {source}", path.display())
            }
            TlsConfigError::NoCertificate { path } => {
                write!(f, "--ca-file {}: no PEM certificate found", path.display())
            }
            TlsConfigError::UnusableCertificate { path, source } => {
                write!(f, "--ca-file {}: unusable certificate: {source}", path.display())
            }
            TlsConfigError::Provider(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsConfigError::Read { source, .. } => Some(source),
            TlsConfigError::NotPem { source, .. } => Some(source),
            TlsConfigError::UnusableCertificate { source, .. } | TlsConfigError::Provider(source) => Some(source),
            TlsConfigError::NoCertificate { .. } => None,
        }
    }
}

/// Every `CERTIFICATE` section of a PEM file, through rustls-pki-types' reader (other sections,
/// such as a private key, are skipped).
fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem_error = |e: pem::Error| match e {
        pem::Error::Io(source) => TlsConfigError::Read { path: path.to_owned(), source },
        source => TlsConfigError::NotPem { path: path.to_owned(), source },
    };
    let certs: Vec<_> =
        CertificateDer::pem_file_iter(path).map_err(pem_error)?.collect::<Result<_, _>>().map_err(pem_error)?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate { path: path.to_owned() });
    }
    Ok(certs)
}

fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::ServerName(bare.to_owned()))
}

/// Why TLS failed, with rustls's own error kept as it is (not hidden in an `io::Error`). Each is
/// fatal to its session: the connection's owner logs it and reconnects.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused: a certificate (unknown issuer, wrong name, expired), an alert from the
    /// server, a protocol violation.
    Rustls(rustls::Error),
    /// The host cannot be a TLS server name.
    ServerName(String),
    /// tickfeed's record layer refused a record after the handshake (a tag failure, an alert,
    /// a KeyUpdate, an oversize record...).
    Record(RecordError),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Rustls(e) => e.fmt(f),
            TlsError::ServerName(h) => write!(f, "'{h}' is not a valid TLS server name"),
            TlsError::Record(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Rustls(e) => Some(e),
            TlsError::ServerName(_) => None,
            TlsError::Record(e) => Some(e),
        }
    }
}

/// Why a session read failed: the socket under it (`WouldBlock` and `Interrupted` included, for
/// the caller to treat as on a plain socket), or TLS.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// The socket.
    Io(io::Error),
    /// TLS itself.
    Tls(TlsError),
}

/// Ciphertext buffer: one socket read's worth beyond the largest record, so a partial record
/// moved to the front always leaves room for a full read.
const CIPHERTEXT_BUF: usize = 64 * 1024 + MAX_RECORD;

/// Who processes records: rustls until its handshake completes, then tickfeed's record layer.
enum Stage {
    Handshake(Box<ClientConnection>),
    Records(Box<RecordLayer>),
    /// After a failed switch: every call is an error.
    Failed,
}

/// One client TLS session over a non-blocking socket the caller owns.
///
/// rustls does the handshake, fed whole records only from the session's own ciphertext buffer.
/// When the record that completes the handshake has been processed, rustls' decrypted plaintext
/// (if any) and its pending records (the client Finished, the upgrade request) are drained, the
/// traffic secrets extracted, and from then on [`RecordLayer`] decrypts each record in place in
/// that buffer and encrypts our writes into a preallocated output buffer: no allocation per record
/// (docs/tls.md).
pub(crate) struct TlsSession {
    stage: Stage,
    /// Ciphertext from the socket: `[next, end)` not yet processed; `[pt.0, pt.1)` decrypted
    /// plaintext not yet delivered.
    inbuf: Box<[u8]>,
    next: usize,
    end: usize,
    pt: (usize, usize),
    /// Plaintext rustls decrypted before the switch (the HTTP 101 response, when it came with the
    /// handshake's last flight), delivered first.
    early: Vec<u8>,
    early_pos: usize,
    /// Records waiting for the socket: `[out_pos, out.len())`. Preallocated to
    /// [`MAX_QUEUED_WRITE`], which bounds it after the switch.
    out: Vec<u8>,
    out_pos: usize,
    /// close_notify (or a TLS-level end) came: reads return `Ok(0)`.
    eof: bool,
    /// Our close_notify is queued: nothing more is sent.
    closed: bool,
}

impl TlsSession {
    fn new(conn: ClientConnection) -> TlsSession {
        TlsSession {
            stage: Stage::Handshake(Box::new(conn)),
            inbuf: vec![0u8; CIPHERTEXT_BUF].into_boxed_slice(),
            next: 0,
            end: 0,
            pt: (0, 0),
            early: Vec::new(),
            early_pos: 0,
            out: Vec::with_capacity(MAX_QUEUED_WRITE),
            out_pos: 0,
            eof: false,
            closed: false,
        }
    }

    /// Whether tickfeed's record layer has taken over from rustls.
    #[cfg(test)]
    fn switched(&self) -> bool {
        matches!(self.stage, Stage::Records(_))
    }

    /// Reads decrypted bytes into `dst`: first what is already decrypted or buffered, else one
    /// socket read. `Ok(0)` is the end of the stream (close_notify or the peer's FIN);
    /// `WouldBlock` means wait for readable. Handshake records may leave bytes to send: call
    /// [`Self::flush`] after each call.
    ///
    /// Adds to `ticks` the stage clock's ticks spent in the socket read (`ticks[0]`) and in TLS
    /// record processing and decryption (`ticks[1]`) when `clock` is set.
    pub(crate) fn read<S: Read + Write>(
        &mut self,
        sock: &mut S,
        dst: &mut [u8],
        clock: Option<StageClock>,
        ticks: &mut [u64; 2],
    ) -> Result<usize, SessionError> {
        let mut mark = clock.map(|c| c.now());
        let mut lap = |stage: usize| {
            if let (Some(c), Some(m)) = (clock, mark.as_mut()) {
                let now = c.now();
                ticks[stage] += now.saturating_sub(*m);
                *m = now;
            }
        };
        loop {
            let r = self.deliver(dst);
            lap(1);
            match r {
                Ok(0) if !self.eof => {}
                Ok(n) => return Ok(n),
                Err(e) => {
                    // Try to send the alert rustls may have queued; the connection is over.
                    let _ = self.flush(sock);
                    return Err(e);
                }
            }
            self.make_room();
            let r = sock.read(&mut self.inbuf[self.end..]);
            lap(0);
            match r {
                // The peer closed TCP (without close_notify when it comes here): an end of stream.
                Ok(0) => return Ok(0),
                Ok(n) => self.end += n,
                Err(e) => return Err(SessionError::Io(e)),
            }
        }
    }

    /// Moves the unprocessed tail of the ciphertext buffer to the front once the free space
    /// behind it is less than a record (only called with no plaintext pending).
    fn make_room(&mut self) {
        if self.next == self.end {
            (self.next, self.end) = (0, 0);
        } else if self.inbuf.len() - self.end < MAX_RECORD {
            self.inbuf.copy_within(self.next..self.end, 0);
            self.end -= self.next;
            self.next = 0;
        }
    }

    /// Copies into `dst` what is decrypted, processing buffered whole records until `dst` is full
    /// or none is left. Never reads the socket.
    fn deliver(&mut self, dst: &mut [u8]) -> Result<usize, SessionError> {
        let mut n = 0;
        loop {
            if self.early_pos < self.early.len() {
                let k = (self.early.len() - self.early_pos).min(dst.len() - n);
                dst[n..n + k].copy_from_slice(&self.early[self.early_pos..self.early_pos + k]);
                (self.early_pos, n) = (self.early_pos + k, n + k);
                if self.early_pos == self.early.len() {
                    (self.early, self.early_pos) = (Vec::new(), 0);
                }
            }
            if self.pt.0 < self.pt.1 {
                let k = (self.pt.1 - self.pt.0).min(dst.len() - n);
                dst[n..n + k].copy_from_slice(&self.inbuf[self.pt.0..self.pt.0 + k]);
                (self.pt.0, n) = (self.pt.0 + k, n + k);
            }
            if n == dst.len() || self.eof {
                return Ok(n);
            }
            match &mut self.stage {
                Stage::Records(rl) => {
                    let rec_err = |e| SessionError::Tls(TlsError::Record(e));
                    let Some(len) = rl.record_len(&self.inbuf[self.next..self.end]).map_err(rec_err)? else {
                        return Ok(n);
                    };
                    let base = self.next;
                    self.next += len;
                    match rl.open(&mut self.inbuf[base..base + len]).map_err(rec_err)? {
                        Opened::Data(r) => self.pt = (base + r.start, base + r.end),
                        Opened::Nothing => {}
                        Opened::CloseNotify => self.eof = true,
                    }
                }
                Stage::Handshake(_) => {
                    if !self.handshake_record()? {
                        return Ok(n);
                    }
                }
                Stage::Failed => {
                    return Err(SessionError::Tls(TlsError::Rustls(rustls::Error::General(
                        "TLS session unusable after a failed switch to the record layer".into(),
                    ))));
                }
            }
        }
    }

    /// Feeds rustls the next whole buffered record (`Ok(false)`: none yet), collects what it
    /// decrypted, and switches to the record layer once the handshake is complete.
    fn handshake_record(&mut self) -> Result<bool, SessionError> {
        let Stage::Handshake(conn) = &mut self.stage else { return Ok(false) };
        let buf = &self.inbuf[self.next..self.end];
        let Some(h) = buf.get(..HEADER_LEN) else { return Ok(false) };
        let len = HEADER_LEN + usize::from(u16::from_be_bytes([h[3], h[4]]));
        if len > MAX_RECORD {
            let e = RecordError::RecordOverflow { len: len - HEADER_LEN, limit: MAX_RECORD - HEADER_LEN };
            return Err(SessionError::Tls(TlsError::Record(e)));
        }
        let Some(mut rec) = buf.get(..len) else { return Ok(false) };
        self.next += len;
        while !rec.is_empty() {
            match conn.read_tls(&mut rec) {
                Ok(0) => {
                    let e = rustls::Error::General("rustls took no bytes of a handshake record".into());
                    return Err(SessionError::Tls(TlsError::Rustls(e)));
                }
                Ok(_) => {}
                Err(e) => return Err(SessionError::Io(e)),
            }
            if let Err(e) = conn.process_new_packets() {
                let _ = conn.write_tls(&mut self.out);
                return Err(SessionError::Tls(TlsError::Rustls(e)));
            }
        }
        // Whatever rustls decrypted (at most what the handshake's records carried).
        let mut chunk = [0u8; 4096];
        loop {
            match conn.reader().read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.early.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.eof = true;
                    break;
                }
                Err(e) => return Err(SessionError::Io(e)),
            }
        }
        if conn.is_handshaking() || self.eof {
            return Ok(true);
        }
        // The switch: nothing is half-consumed inside rustls (it was fed whole records), its
        // plaintext is drained; now its pending records go to our output buffer, then the keys.
        while conn.wants_write() {
            conn.write_tls(&mut self.out).map_err(SessionError::Io)?;
        }
        let Stage::Handshake(conn) = std::mem::replace(&mut self.stage, Stage::Failed) else { return Ok(false) };
        let Some(version) = conn.protocol_version() else {
            let e = rustls::Error::General("handshake complete without a protocol version".into());
            return Err(SessionError::Tls(TlsError::Rustls(e)));
        };
        let secrets = conn.dangerous_extract_secrets().map_err(|e| SessionError::Tls(TlsError::Rustls(e)))?;
        let layer = RecordLayer::new(version, secrets).map_err(|e| SessionError::Tls(TlsError::Record(e)))?;
        self.stage = Stage::Records(Box::new(layer));
        Ok(true)
    }

    /// Queues `data` for encryption: inside rustls until the handshake completes, then sealed by
    /// the record layer into the output buffer. `WriteZero` when that would take the queue past
    /// [`MAX_QUEUED_WRITE`] (the peer is not reading).
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.stage {
            Stage::Handshake(conn) => conn.writer().write_all(data),
            Stage::Records(rl) => {
                if self.closed {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "TLS write after close_notify"));
                }
                let need = rl.sealed_len(data.len());
                if self.out.len() - self.out_pos + need > MAX_QUEUED_WRITE {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "TLS output queue full"));
                }
                if self.out.len() + need > self.out.capacity() {
                    self.out.drain(..self.out_pos);
                    self.out_pos = 0;
                }
                rl.seal_app_data(data, &mut self.out).map_err(io::Error::other)
            }
            Stage::Failed => Err(io::Error::other("TLS session unusable")),
        }
    }

    /// Writes queued TLS records until done or `WouldBlock` (then `Ok(false)`: wait for writable).
    pub(crate) fn flush<S: Write>(&mut self, sock: &mut S) -> io::Result<bool> {
        if let Stage::Handshake(conn) = &mut self.stage {
            while conn.wants_write() {
                conn.write_tls(&mut self.out)?;
            }
        }
        while self.out_pos < self.out.len() {
            match sock.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        Ok(true)
    }

    /// Queues a close_notify alert (flush to send it); nothing is sent after it.
    pub(crate) fn close(&mut self) {
        match &mut self.stage {
            Stage::Handshake(conn) => conn.send_close_notify(),
            // With the queue full (a peer not reading) there is no room for it: skipped.
            Stage::Records(rl)
                if !self.closed && self.out.len() - self.out_pos + rl.sealed_len(2) <= MAX_QUEUED_WRITE =>
            {
                if self.out.len() + rl.sealed_len(2) > self.out.capacity() {
                    self.out.drain(..self.out_pos);
                    self.out_pos = 0;
                }
                let _ = rl.seal_close_notify(&mut self.out);
            }
            _ => {}
        }
        self.closed = true;
    }
}

// ---- REST: rustls under ureq, with our roots ----

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

/// ureq's TLS layer for `https://` built on [`TlsSetup`]'s configuration (ring, webpki roots and
/// `--ca-file`), replacing ureq's own rustls connector, which can only trust either its bundled
/// roots or a fixed list of certificates, not both. Chain it after ureq's `TcpConnector`.
#[derive(Debug, Clone)]
pub(crate) struct RestTlsConnector {
    config: Arc<ClientConfig>,
}

impl<In: Transport> Connector<In> for RestTlsConnector {
    type Out = Either<In, RestTlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().ok_or(ureq::Error::Tls("https URL without a host"))?;
        let name = match server_name(host) {
            Ok(n) => n,
            Err(_) => return Err(ureq::Error::Tls("the URL's host is not a valid TLS server name")),
        };
        let mut conn = ClientConnection::new(self.config.clone(), name).map_err(ureq::Error::Rustls)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(RestTlsTransport { buffers, stream: StreamOwned { conn, sock } })))
    }
}

/// A TLS-wrapped ureq transport (see [`RestTlsConnector`]).
pub(crate) struct RestTlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for RestTlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestTlsTransport").finish_non_exhaustive()
    }
}

impl Transport for RestTlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_errors_are_one_line_config_errors() {
        let dir = std::env::temp_dir().join(format!("tickfeed-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = TlsSetup::new(Some(&missing)).unwrap_err().to_string();
        assert!(e.starts_with("--ca-file ") && e.contains("missing.pem") && !e.contains('\n'), "{e}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = TlsSetup::new(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        assert!(TlsSetup::new(Some(&junk)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_certificate_of_a_pem_file_is_a_root_and_other_sections_are_skipped() {
        let dir = std::env::temp_dir().join(format!("tickfeed-tls-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut pem = String::new();
        for name in ["a", "b"] {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, format!("tickfeed test CA {name}"));
            let key = rcgen::KeyPair::generate().unwrap();
            pem.push_str(&key.serialize_pem());
            pem.push_str(&params.self_signed(&key).unwrap().pem());
        }
        let path = dir.join("two.pem");
        std::fs::write(&path, &pem).unwrap();
        assert_eq!(TlsSetup::new(Some(&path)).unwrap().extra_roots(), 2);
        // A section cut short is a PEM error naming the file, not a silently shorter list.
        let cut = dir.join("cut.pem");
        std::fs::write(&cut, &pem[..pem.len() - 30]).unwrap();
        let e = TlsSetup::new(Some(&cut)).unwrap_err();
        assert!(matches!(e, TlsConfigError::NotPem { .. }), "{e}");
        assert!(e.to_string().starts_with("--ca-file ") && e.to_string().contains("not a PEM file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    // ---- the session against rustls as the server, in memory ----

    use crate::net::record::MAX_PLAINTEXT;
    use rustls::crypto::ring::cipher_suite as cs;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::ProtocolVersion;
    use rustls::{ServerConfig, ServerConnection, SupportedCipherSuite, SupportedProtocolVersion};

    /// A socket in memory: reads return at most a pseudo-random 1..=`chunk` bytes (so records
    /// split anywhere), `WouldBlock` when empty; writes are collected.
    struct MemSock {
        rx: Vec<u8>,
        rpos: usize,
        tx: Vec<u8>,
        chunk: usize,
        rng: u64,
    }

    impl Read for MemSock {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.rpos == self.rx.len() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let k = (1 + self.rng as usize % self.chunk).min(buf.len()).min(self.rx.len() - self.rpos);
            buf[..k].copy_from_slice(&self.rx[self.rpos..self.rpos + k]);
            self.rpos += k;
            Ok(k)
        }
    }

    impl Write for MemSock {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.tx.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A CA (written as a `--ca-file`) and a rustls server presenting a leaf for localhost signed
    /// by it, restricted to one version and one suite.
    fn setup(version: &'static SupportedProtocolVersion, suite: SupportedCipherSuite) -> (TlsSetup, Arc<ServerConfig>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let dir = std::env::temp_dir().join(format!("tickfeed-tls-rl-{}-{:?}", std::process::id(), suite.suite()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        let client = TlsSetup::new(Some(&path)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = vec![suite];
        let chain = vec![CertificateDer::from(leaf.der().to_vec()), CertificateDer::from(ca.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let server = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        (client, Arc::new(server))
    }

    struct Pair {
        client: TlsSession,
        server: ServerConnection,
        sock: MemSock,
        got: Vec<u8>,
        server_got: Vec<u8>,
    }

    /// What one exchange ended with on the client side.
    #[derive(Debug, PartialEq)]
    enum Pumped {
        Open,
        Eof,
    }

    impl Pair {
        fn new(client: &TlsSetup, server: &Arc<ServerConfig>, chunk: usize) -> Pair {
            let sock = MemSock { rx: Vec::new(), rpos: 0, tx: Vec::new(), chunk, rng: 0x2545_F491_4F6C_DD1D };
            let mut server = ServerConnection::new(server.clone()).unwrap();
            server.set_buffer_limit(None);
            Pair { client: client.session("localhost").unwrap(), server, sock, got: Vec::new(), server_got: Vec::new() }
        }

        /// Client output to the server, server output to the client, client reads to WouldBlock.
        fn pump(&mut self) -> Result<Pumped, SessionError> {
            assert!(self.client.flush(&mut self.sock).unwrap());
            let mut t = &self.sock.tx[..];
            while !t.is_empty() {
                let n = self.server.read_tls(&mut t).unwrap();
                assert!(n > 0, "the server took none of {} bytes", t.len());
                self.server.process_new_packets().unwrap();
                let mut v = Vec::new();
                match self.server.reader().read_to_end(&mut v) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Ok(0) => {}
                    r => panic!("{r:?}"),
                }
                self.server_got.extend_from_slice(&v);
            }
            self.sock.tx.clear();
            self.server_out();
            let mut buf = [0u8; 3000];
            loop {
                match self.client.read(&mut self.sock, &mut buf, Some(StageClock::monotonic()), &mut [0; 2]) {
                    Ok(0) => return Ok(Pumped::Eof),
                    Ok(n) => self.got.extend_from_slice(&buf[..n]),
                    Err(SessionError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Pumped::Open),
                    Err(e) => return Err(e),
                }
            }
        }

        fn server_out(&mut self) {
            while self.server.wants_write() {
                self.server.write_tls(&mut self.sock.rx).unwrap();
            }
        }

        fn server_plaintext(&mut self) -> Vec<u8> {
            std::mem::take(&mut self.server_got)
        }

        /// The request, the handshake, the switch, and the 101.
        fn open(&mut self) {
            self.client.write(b"GET /ws HTTP/1.1\r\n\r\n").unwrap();
            // TLS 1.2 sends the request only after the server's Finished: one round more.
            for _ in 0..10 {
                assert_eq!(self.pump().unwrap(), Pumped::Open);
                if self.client.switched() && !self.server.is_handshaking() && !self.server_got.is_empty() {
                    break;
                }
            }
            assert!(self.client.switched(), "no switch to the record layer");
            assert_eq!(self.server_plaintext(), b"GET /ws HTTP/1.1\r\n\r\n");
            self.server.writer().write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap();
            assert_eq!(self.pump().unwrap(), Pumped::Open);
            assert_eq!(std::mem::take(&mut self.got), b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        }

        fn layer(&self) -> &RecordLayer {
            match &self.client.stage {
                Stage::Records(rl) => rl,
                _ => panic!("not switched"),
            }
        }

        fn record_error(&mut self) -> RecordError {
            match self.pump() {
                Err(SessionError::Tls(TlsError::Record(e))) => e,
                r => panic!("expected a record error, got {r:?}"),
            }
        }
    }

    const SUITES: [(&SupportedProtocolVersion, SupportedCipherSuite); 6] = [
        (&rustls::version::TLS13, cs::TLS13_AES_256_GCM_SHA384),
        (&rustls::version::TLS13, cs::TLS13_AES_128_GCM_SHA256),
        (&rustls::version::TLS13, cs::TLS13_CHACHA20_POLY1305_SHA256),
        (&rustls::version::TLS12, cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
        (&rustls::version::TLS12, cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        (&rustls::version::TLS12, cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ];

    #[test]
    fn every_suite_through_the_record_layer_against_rustls() {
        for (version, suite) in SUITES {
            let tls13 = version.version == ProtocolVersion::TLSv1_3;
            let (client, server) = setup(version, suite);
            // Records split at every byte, at random points, and many records per read.
            for chunk in [1, 7, 1500, 100_000] {
                let mut p = Pair::new(&client, &server, chunk);
                p.open();
                assert_eq!(p.server.negotiated_cipher_suite(), Some(suite));
                // TLS 1.3: rustls' server sends 2 tickets once it has our Finished, so after the
                // switch; the layer skipped them.
                assert_eq!(p.layer().tickets_skipped(), if tls13 { 2 } else { 0 }, "{suite:?}");
                let mut all = Vec::new();
                for (i, n) in [1usize, 100, 16_384, 16_385, 40_000, 3].into_iter().enumerate() {
                    let msg: Vec<u8> = (0..n).map(|j| (j * 31 + i) as u8).collect();
                    p.server.writer().write_all(&msg).unwrap();
                    all.extend_from_slice(&msg);
                }
                p.server_out();
                assert_eq!(p.pump().unwrap(), Pumped::Open);
                assert!(p.got == all, "{suite:?} chunk {chunk}: {} of {} bytes", p.got.len(), all.len());
                // Our writes (pongs), decrypted by rustls.
                p.client.write(b"pong one").unwrap();
                p.client.write(&[7u8; 20_000]).unwrap();
                assert_eq!(p.pump().unwrap(), Pumped::Open);
                let mut want = b"pong one".to_vec();
                want.extend_from_slice(&[7u8; 20_000]);
                assert!(p.server_plaintext() == want, "{suite:?}: our writes");
                // Our close_notify reaches rustls as a clean close.
                p.client.close();
                assert!(p.client.flush(&mut p.sock).unwrap());
                let mut t = &p.sock.tx[..];
                p.server.read_tls(&mut t).unwrap();
                assert!(p.server.process_new_packets().unwrap().peer_has_closed(), "{suite:?}");
                p.sock.tx.clear();
                assert!(p.client.write(b"late").is_err());
                // The server's close_notify is the end of the stream.
                p.server.send_close_notify();
                p.server_out();
                assert_eq!(p.pump().unwrap(), Pumped::Eof);
            }
        }
    }

    #[test]
    fn key_update_tampering_oversize_and_alerts_end_the_session() {
        for (version, suite) in SUITES {
            let tls13 = version.version == ProtocolVersion::TLSv1_3;
            let (client, server) = setup(version, suite);
            if tls13 {
                let mut p = Pair::new(&client, &server, 500);
                p.open();
                p.server.refresh_traffic_keys().unwrap();
                p.server_out();
                let e = p.record_error();
                assert_eq!(e, RecordError::KeyUpdate);
                assert!(e.to_string().contains("KeyUpdate"), "{e}");
            }
            // One flipped byte in the middle of a record.
            let mut p = Pair::new(&client, &server, 500);
            p.open();
            p.server.writer().write_all(&[b'x'; 300]).unwrap();
            p.server_out();
            let mid = p.sock.rx.len() - 150;
            p.sock.rx[mid] ^= 0x20;
            assert_eq!(p.record_error(), RecordError::BadRecordMac, "{suite:?}");
            // A header announcing a record over the version's limit: refused before its body.
            let mut p = Pair::new(&client, &server, 500);
            p.open();
            let limit = if tls13 { MAX_PLAINTEXT + 256 } else { MAX_PLAINTEXT + 2048 };
            let len = (limit + 1) as u16;
            p.sock.rx.extend_from_slice(&[23, 3, 3, (len >> 8) as u8, len as u8]);
            assert_eq!(p.record_error(), RecordError::RecordOverflow { len: limit + 1, limit }, "{suite:?}");
            // The limit itself passes the header check. TLS 1.3: it then fails authentication
            // (junk). TLS 1.2: without compression its plaintext would be over 2^14, refused
            // before decrypting.
            let mut p = Pair::new(&client, &server, 100_000);
            p.open();
            let len = limit as u16;
            p.sock.rx.extend_from_slice(&[23, 3, 3, (len >> 8) as u8, len as u8]);
            p.sock.rx.resize(p.sock.rx.len() + limit, 0);
            let want = if tls13 {
                RecordError::BadRecordMac
            } else {
                let gcm = suite != cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256;
                RecordError::RecordOverflow { len: limit - 16 - if gcm { 8 } else { 0 }, limit: MAX_PLAINTEXT }
            };
            assert_eq!(p.record_error(), want, "{suite:?}");
            // An unencrypted alert after the switch is not accepted as one.
            let mut p = Pair::new(&client, &server, 500);
            p.open();
            p.sock.rx.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
            let e = p.record_error();
            assert!(
                matches!(e, RecordError::UnexpectedContentType(21) | RecordError::ShortRecord { .. }),
                "{suite:?}: {e}"
            );
        }
    }

    #[test]
    fn a_fatal_alert_from_rustls_is_named() {
        // rustls sends an encrypted fatal alert when it refuses what we sent: here a record
        // tampered on its way to the server (bad_record_mac).
        let (client, server) = setup(&rustls::version::TLS13, cs::TLS13_AES_128_GCM_SHA256);
        let mut p = Pair::new(&client, &server, 500);
        p.open();
        p.client.write(b"hello").unwrap();
        assert!(p.client.flush(&mut p.sock).unwrap());
        let last = p.sock.tx.len() - 1;
        p.sock.tx[last] ^= 1;
        let mut t = &p.sock.tx[..];
        p.server.read_tls(&mut t).unwrap();
        assert!(p.server.process_new_packets().is_err());
        p.sock.tx.clear();
        p.server_out();
        let e = p.record_error();
        assert_eq!(e, RecordError::Alert { level: 2, description: 20 });
        assert_eq!(e.to_string(), "the server sent a fatal alert: bad_record_mac (20)");
    }

    #[test]
    fn the_output_queue_is_bounded_after_the_switch() {
        let (client, server) = setup(&rustls::version::TLS13, cs::TLS13_AES_128_GCM_SHA256);
        let mut p = Pair::new(&client, &server, 500);
        p.open();
        let cap = p.client.out.capacity();
        let mut queued = 0;
        loop {
            match p.client.write(&[0u8; 125]) {
                Ok(()) => queued += 1,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::WriteZero);
                    break;
                }
            }
        }
        assert!(p.client.out.len() <= MAX_QUEUED_WRITE && p.client.out.capacity() == cap);
        assert!(queued > 300, "{queued}");
    }

    #[test]
    fn public_roots_and_server_names() {
        let t = TlsSetup::new(None).unwrap();
        assert_eq!(t.extra_roots(), 0);
        assert!(t.session("stream.binance.com").is_ok());
        assert!(t.session("127.0.0.1").is_ok());
        assert!(t.session("[::1]").is_ok());
        assert!(matches!(t.session("bad host!"), Err(TlsError::ServerName(h)) if h == "bad host!"));
    }
}
