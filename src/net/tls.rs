//! Every rustls call tickfeed makes: the client configuration (ring, Mozilla's roots plus any
//! `--ca-file` roots), the websocket's TLS session over a non-blocking mio socket, and the TLS
//! layer handed to ureq for REST, so the websocket and REST trust exactly the same roots.
//!
//! The session follows rustls 0.23's `tlsclient-mio` example: `read_tls` -> `process_new_packets`
//! -> `reader()`, and `wants_write` -> `write_tls` ([`TlsSession::flush`], which the connection
//! calls after every read and write; a `WouldBlock` there waits for mio's WRITABLE). Nothing here decides when to connect, retry or give up: a failure is
//! a [`TlsError`] (rustls's own error kept as it is) or the socket's `io::Error`, for the
//! connection's owner to log and reconnect on. Not supported, by design:
//! client certificates, session resumption tuning, ALPN.

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
    config: Arc<ClientConfig>,
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
        Ok(TlsSetup { config: Arc::new(config), extra_roots })
    }

    /// How many roots `--ca-file` added.
    pub fn extra_roots(&self) -> usize {
        self.extra_roots
    }

    /// A client session for `host` (a DNS name or an IP literal, without brackets), with SNI.
    pub(crate) fn session(&self, host: &str) -> Result<TlsSession, TlsError> {
        let name = server_name(host)?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(TlsError::Rustls)?;
        Ok(TlsSession { conn })
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
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Rustls(e) => e.fmt(f),
            TlsError::ServerName(h) => write!(f, "'{h}' is not a valid TLS server name"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Rustls(e) => Some(e),
            TlsError::ServerName(_) => None,
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

/// One client TLS session over a non-blocking socket the caller owns.
pub(crate) struct TlsSession {
    conn: ClientConnection,
}

impl TlsSession {
    /// Reads decrypted bytes into `dst`: first what rustls already holds, else one socket read
    /// (`read_tls`) and `process_new_packets`. `Ok(0)` is the end of the stream (close_notify or
    /// the peer's FIN); `WouldBlock` means wait for readable. Handshake and alert records may
    /// leave bytes to send: call [`Self::flush`] after each call.
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
        loop {
            let r = self.conn.reader().read(dst);
            if let (Some(c), Some(m)) = (clock, mark.as_mut()) {
                let now = c.now();
                ticks[1] += now.saturating_sub(*m);
                *m = now;
            }
            match r {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed TCP without close_notify: an end of stream for us.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(SessionError::Io(e)),
            }
            let r = self.conn.read_tls(sock);
            if let (Some(c), Some(m)) = (clock, mark.as_mut()) {
                let now = c.now();
                ticks[0] += now.saturating_sub(*m);
                *m = now;
            }
            match r {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => return Err(SessionError::Io(e)),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Try to tell the server why (the alert rustls queued); the connection is over.
                let _ = self.conn.write_tls(sock);
                return Err(SessionError::Tls(TlsError::Rustls(e)));
            }
        }
    }

    /// Queues `data` for encryption (before the handshake completes it waits inside rustls).
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(data)
    }

    /// Writes queued TLS records until done or `WouldBlock` (then `Ok(false)`: wait for writable).
    pub(crate) fn flush<S: Write>(&mut self, sock: &mut S) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Queues a close_notify alert (flush to send it).
    pub(crate) fn close(&mut self) {
        self.conn.send_close_notify();
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
