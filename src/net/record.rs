//! tickfeed's own TLS record layer for application traffic, after rustls has done the handshake.
//!
//! rustls 0.23 copies every decrypted application-data record into a fresh `Vec`. To keep the
//! live loop free of allocations over TLS, rustls runs the handshake (certificate verification,
//! key exchange: all of it rustls') and then hands over the traffic secrets
//! (`dangerous_extract_secrets`); from then on this type decrypts each record where it lies in
//! the caller's buffer and encrypts our few writes, with `ring::aead`.
//!
//! [`RecordLayer`] is sans-IO: it parses record headers, opens (decrypts and checks) one whole
//! record in place, seals plaintext into records appended to a caller's buffer, and keeps the
//! sequence numbers. It never allocates and never panics on what the peer sends.
//!
//! What it accepts after the handshake (everything else is an error naming what came):
//!
//! - TLS 1.3 (RFC 8446 §5): records of outer type application_data, at most 2^14 + 256 bytes of
//!   ciphertext; nonce = iv XOR sequence, AAD = the 5-byte header; zero padding stripped, the
//!   inner content type taken from the last non-zero byte; content at most 2^14 bytes.
//! - TLS 1.2 (RFC 5246, 5288, 7905): version 0x0303, at most 2^14 + 2048 bytes of ciphertext;
//!   AES-GCM with the 8-byte explicit nonce after the header, ChaCha20-Poly1305 with
//!   nonce = iv XOR sequence; AAD = sequence || type || version || plaintext length.
//! - Application data: returned as a range of the record, decrypted in place.
//! - Alerts: close_notify is the end of the stream; any other alert is an error naming it.
//! - Handshake messages: TLS 1.3 NewSessionTicket is skipped (tickets are not used: the
//!   websocket never resumes); TLS 1.3 KeyUpdate is an error, since following it needs the traffic
//!   secret, which rustls does not hand over (only key and iv); a TLS 1.2 HelloRequest is ignored
//!   (RFC 5246 §7.4.1.1 lets a client ignore it; tickfeed never renegotiates); anything else is an
//!   error.
//! - A record failing authentication (tag mismatch) is fatal; sequence numbers count up from what
//!   rustls used and the layer refuses to go past 2^64 - 2, never wrapping.

use std::fmt;
use std::ops::Range;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use rustls::{ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion};

/// Bytes of a TLS record header: type, version (2), length (2).
pub const HEADER_LEN: usize = 5;
/// Most plaintext one record carries (2^14).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// Most ciphertext a TLS 1.3 record may carry (RFC 8446 §5.2).
const MAX_CIPHERTEXT_13: usize = MAX_PLAINTEXT + 256;
/// Most ciphertext a TLS 1.2 record may carry (RFC 5246 §6.2.3).
const MAX_CIPHERTEXT_12: usize = MAX_PLAINTEXT + 2048;
/// The largest whole record (header included) either version allows: a buffer this large always
/// holds one complete record.
pub const MAX_RECORD: usize = HEADER_LEN + MAX_CIPHERTEXT_12;

const TAG_LEN: usize = 16;
const EXPLICIT_NONCE_LEN: usize = 8;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

const HELLO_REQUEST: u8 = 0;
const NEW_SESSION_TICKET: u8 = 4;
const KEY_UPDATE: u8 = 24;

/// The protocol version a [`RecordLayer`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// The AEAD family: it decides TLS 1.2's nonce format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Gcm,
    ChaCha,
}

/// One direction's key, iv and next sequence number.
struct Keys {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    seq: u64,
}

impl Keys {
    fn new(seq: u64, secrets: ConnectionTrafficSecrets) -> Result<(Keys, Family), RecordError> {
        let (alg, family, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, Family::Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, Family::Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, Family::ChaCha, key, iv)
            }
            _ => return Err(RecordError::Unsupported("an AEAD other than AES-GCM or ChaCha20-Poly1305")),
        };
        let key =
            UnboundKey::new(alg, key.as_ref()).map_err(|_| RecordError::Unsupported("a key of the wrong length"))?;
        let iv: [u8; NONCE_LEN] =
            iv.as_ref().try_into().map_err(|_| RecordError::Unsupported("an iv of the wrong length"))?;
        Ok((Keys { key: LessSafeKey::new(key), iv, seq }, family))
    }

    /// Takes the next sequence number; refuses the last one so the counter can never wrap.
    fn take_seq(&mut self) -> Result<u64, RecordError> {
        let s = self.seq;
        if s == u64::MAX {
            return Err(RecordError::SequenceExhausted);
        }
        self.seq = s + 1;
        Ok(s)
    }

    /// iv XOR the sequence number, left-padded to the nonce length (RFC 8446 §5.3, RFC 7905 §2).
    fn xor_nonce(&self, seq: u64) -> [u8; NONCE_LEN] {
        let mut n = self.iv;
        for (b, s) in n[NONCE_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
            *b ^= s;
        }
        n
    }
}

/// What opening one record gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Application data: this range of the record (possibly empty) is the plaintext.
    Data(Range<usize>),
    /// A record with nothing for the application (a skipped NewSessionTicket, a HelloRequest).
    Nothing,
    /// The peer's close_notify: the end of the stream.
    CloseNotify,
}

/// A TLS record layer for one connection's application traffic (see the module documentation).
pub struct RecordLayer {
    version: Version,
    family: Family,
    rx: Keys,
    tx: Keys,
    /// A handshake message header split across records: its bytes so far.
    hs_header: [u8; 4],
    hs_header_len: usize,
    /// Bytes of a skipped handshake message (a ticket) still to come in later records.
    hs_skip: usize,
    tickets: u64,
}

impl fmt::Debug for RecordLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the keys.
        f.debug_struct("RecordLayer")
            .field("version", &self.version)
            .field("family", &self.family)
            .field("rx_seq", &self.rx.seq)
            .field("tx_seq", &self.tx.seq)
            .finish_non_exhaustive()
    }
}

impl RecordLayer {
    /// The record layer continuing a handshake rustls completed: `version` as rustls negotiated
    /// it (`protocol_version()`), `secrets` from `dangerous_extract_secrets()` (their sequence
    /// numbers included). Only TLS 1.2 and 1.3 with AES-GCM or ChaCha20-Poly1305.
    pub fn new(version: ProtocolVersion, secrets: ExtractedSecrets) -> Result<RecordLayer, RecordError> {
        let version = match version {
            ProtocolVersion::TLSv1_3 => Version::Tls13,
            ProtocolVersion::TLSv1_2 => Version::Tls12,
            _ => return Err(RecordError::Unsupported("a protocol version other than TLS 1.2 or 1.3")),
        };
        let (tx, family) = Keys::new(secrets.tx.0, secrets.tx.1)?;
        let (rx, rx_family) = Keys::new(secrets.rx.0, secrets.rx.1)?;
        if family != rx_family {
            return Err(RecordError::Unsupported("different AEADs per direction"));
        }
        Ok(RecordLayer { version, family, rx, tx, hs_header: [0; 4], hs_header_len: 0, hs_skip: 0, tickets: 0 })
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// NewSessionTicket messages skipped so far.
    pub fn tickets_skipped(&self) -> u64 {
        self.tickets
    }

    /// The length of the whole record (header included) at the front of `buf`, once `buf` holds
    /// all of it; `Ok(None)` while it is incomplete. Checks the header first: a record type or
    /// version this layer would refuse, or a length over the version's limit, is an error as soon
    /// as the 5 header bytes are in, before the body is waited for.
    pub fn record_len(&self, buf: &[u8]) -> Result<Option<usize>, RecordError> {
        let Some(h) = buf.get(..HEADER_LEN) else { return Ok(None) };
        let (typ, ver, len) = (h[0], u16::from_be_bytes([h[1], h[2]]), usize::from(u16::from_be_bytes([h[3], h[4]])));
        let limit = match self.version {
            // The outer type of every protected TLS 1.3 record is application_data (§5.2); the
            // version field is to be ignored (it is authenticated as part of the AAD anyway).
            Version::Tls13 => {
                if typ != APPLICATION_DATA {
                    return Err(RecordError::UnexpectedContentType(typ));
                }
                MAX_CIPHERTEXT_13
            }
            Version::Tls12 => {
                if !matches!(typ, ALERT | HANDSHAKE | APPLICATION_DATA) {
                    return Err(RecordError::UnexpectedContentType(typ));
                }
                if ver != 0x0303 {
                    return Err(RecordError::BadVersion(ver));
                }
                MAX_CIPHERTEXT_12
            }
        };
        if len > limit {
            return Err(RecordError::RecordOverflow { len, limit });
        }
        let total = HEADER_LEN + len;
        Ok((buf.len() >= total).then_some(total))
    }

    /// Opens one whole record (exactly the bytes [`Self::record_len`] measured): checks its tag,
    /// decrypts it in place and says what it was. For application data, the plaintext is the
    /// returned range of `record`.
    pub fn open(&mut self, record: &mut [u8]) -> Result<Opened, RecordError> {
        if self.record_len(record)? != Some(record.len()) {
            return Err(RecordError::NotOneRecord { len: record.len() });
        }
        let (header, body) = record.split_at_mut(HEADER_LEN);
        let mut hdr = [0u8; HEADER_LEN];
        hdr.copy_from_slice(header);
        let (typ, content) = match self.version {
            Version::Tls13 => {
                if body.len() < TAG_LEN + 1 {
                    return Err(RecordError::ShortRecord { len: body.len() });
                }
                let seq = self.rx.take_seq()?;
                let nonce = Nonce::assume_unique_for_key(self.rx.xor_nonce(seq));
                let plain =
                    self.rx.key.open_in_place(nonce, Aad::from(hdr), body).map_err(|_| RecordError::BadRecordMac)?;
                // TLSInnerPlaintext: content || type || zeros (§5.4).
                let Some(last) = plain.iter().rposition(|&b| b != 0) else {
                    return Err(RecordError::NoContentType);
                };
                if last > MAX_PLAINTEXT {
                    return Err(RecordError::RecordOverflow { len: last, limit: MAX_PLAINTEXT });
                }
                (plain[last], HEADER_LEN..HEADER_LEN + last)
            }
            Version::Tls12 => {
                let typ = hdr[0];
                let skip = match self.family {
                    Family::Gcm => EXPLICIT_NONCE_LEN,
                    Family::ChaCha => 0,
                };
                let Some(plain_len) = body.len().checked_sub(skip + TAG_LEN) else {
                    return Err(RecordError::ShortRecord { len: body.len() });
                };
                if plain_len > MAX_PLAINTEXT {
                    return Err(RecordError::RecordOverflow { len: plain_len, limit: MAX_PLAINTEXT });
                }
                let seq = self.rx.take_seq()?;
                let nonce = match self.family {
                    Family::Gcm => {
                        let mut n = [0u8; NONCE_LEN];
                        n[..4].copy_from_slice(&self.rx.iv[..4]);
                        n[4..].copy_from_slice(&body[..EXPLICIT_NONCE_LEN]);
                        n
                    }
                    Family::ChaCha => self.rx.xor_nonce(seq),
                };
                let aad = tls12_aad(seq, typ, [hdr[1], hdr[2]], plain_len);
                self.rx
                    .key
                    .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body[skip..])
                    .map_err(|_| RecordError::BadRecordMac)?;
                (typ, HEADER_LEN + skip..HEADER_LEN + skip + plain_len)
            }
        };
        self.dispatch(typ, record, content)
    }

    fn dispatch(&mut self, typ: u8, record: &[u8], content: Range<usize>) -> Result<Opened, RecordError> {
        let body = &record[content.clone()];
        match typ {
            APPLICATION_DATA => {
                // Handshake messages must not be interleaved with other records (§5.1).
                if self.hs_skip > 0 || self.hs_header_len > 0 {
                    return Err(RecordError::InterleavedHandshake);
                }
                Ok(Opened::Data(content))
            }
            ALERT => {
                // One alert per record, never fragmented or coalesced.
                let &[level, description] = body else {
                    return Err(RecordError::BadAlert { len: body.len() });
                };
                if description == 0 {
                    Ok(Opened::CloseNotify)
                } else {
                    Err(RecordError::Alert { level, description })
                }
            }
            HANDSHAKE => {
                if body.is_empty() {
                    return Err(RecordError::EmptyHandshake);
                }
                self.handshake_bytes(body)?;
                Ok(Opened::Nothing)
            }
            CHANGE_CIPHER_SPEC => Err(RecordError::UnexpectedContentType(typ)),
            other => Err(RecordError::UnexpectedContentType(other)),
        }
    }

    /// Walks the handshake messages of one record, which may start or end mid-message.
    fn handshake_bytes(&mut self, mut p: &[u8]) -> Result<(), RecordError> {
        while !p.is_empty() {
            if self.hs_skip > 0 {
                let k = self.hs_skip.min(p.len());
                self.hs_skip -= k;
                p = &p[k..];
                continue;
            }
            let k = (4 - self.hs_header_len).min(p.len());
            self.hs_header[self.hs_header_len..self.hs_header_len + k].copy_from_slice(&p[..k]);
            self.hs_header_len += k;
            p = &p[k..];
            if self.hs_header_len < 4 {
                break;
            }
            self.hs_header_len = 0;
            let [msg, a, b, c] = self.hs_header;
            let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
            match (self.version, msg) {
                (Version::Tls13, NEW_SESSION_TICKET) => {
                    self.tickets += 1;
                    self.hs_skip = len;
                }
                (Version::Tls13, KEY_UPDATE) => return Err(RecordError::KeyUpdate),
                (Version::Tls12, HELLO_REQUEST) if len == 0 => {}
                (_, other) => return Err(RecordError::UnexpectedHandshake(other)),
            }
        }
        Ok(())
    }

    /// Bytes [`Self::seal_app_data`] appends for `n` bytes of plaintext.
    pub fn sealed_len(&self, n: usize) -> usize {
        let records = n.div_ceil(MAX_PLAINTEXT);
        n + records * self.overhead()
    }

    fn overhead(&self) -> usize {
        HEADER_LEN
            + TAG_LEN
            + match (self.version, self.family) {
                (Version::Tls13, _) => 1,
                (Version::Tls12, Family::Gcm) => EXPLICIT_NONCE_LEN,
                (Version::Tls12, Family::ChaCha) => 0,
            }
    }

    /// Encrypts `data` as application-data records (at most 2^14 bytes each) appended to `out`
    /// ([`Self::sealed_len`] bytes; reserve them first to keep `out` from growing).
    pub fn seal_app_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        for chunk in data.chunks(MAX_PLAINTEXT) {
            self.seal(APPLICATION_DATA, chunk, out)?;
        }
        Ok(())
    }

    /// Appends a close_notify alert record to `out`.
    pub fn seal_close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        // level warning (1), close_notify (0).
        self.seal(ALERT, &[1, 0], out)
    }

    /// Appends one record of type `typ` carrying `data` (at most 2^14 bytes).
    fn seal(&mut self, typ: u8, data: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        debug_assert!(data.len() <= MAX_PLAINTEXT);
        let seq = self.tx.take_seq()?;
        let start = out.len();
        let len = data.len() + self.overhead() - HEADER_LEN;
        // Below 2^14 + 256: fits the length field.
        let len16 = len as u16;
        match self.version {
            Version::Tls13 => {
                let hdr = [APPLICATION_DATA, 3, 3, (len16 >> 8) as u8, len16 as u8];
                out.extend_from_slice(&hdr);
                out.extend_from_slice(data);
                out.push(typ);
                let nonce = Nonce::assume_unique_for_key(self.tx.xor_nonce(seq));
                self.seal_tail(nonce, Aad::from(hdr), out, start + HEADER_LEN)
            }
            Version::Tls12 => {
                out.extend_from_slice(&[typ, 3, 3, (len16 >> 8) as u8, len16 as u8]);
                // A unique nonce per record: iv XOR sequence, as rustls does; for GCM its last
                // 8 bytes travel as the explicit nonce.
                let nonce = self.tx.xor_nonce(seq);
                let from = match self.family {
                    Family::Gcm => {
                        out.extend_from_slice(&nonce[4..]);
                        start + HEADER_LEN + EXPLICIT_NONCE_LEN
                    }
                    Family::ChaCha => start + HEADER_LEN,
                };
                out.extend_from_slice(data);
                let aad = tls12_aad(seq, typ, [3, 3], data.len());
                self.seal_tail(Nonce::assume_unique_for_key(nonce), Aad::from(aad), out, from)
            }
        }
    }

    /// Encrypts `out[from..]` in place and appends its tag.
    fn seal_tail<A: AsRef<[u8]>>(
        &self,
        nonce: Nonce,
        aad: Aad<A>,
        out: &mut Vec<u8>,
        from: usize,
    ) -> Result<(), RecordError> {
        let tag = self
            .tx
            .key
            .seal_in_place_separate_tag(nonce, aad, &mut out[from..])
            .map_err(|_| RecordError::SealFailed)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }
}

/// TLS 1.2's additional data: seq_num || type || version || length (RFC 5246 §6.2.3.3).
fn tls12_aad(seq: u64, typ: u8, version: [u8; 2], plain_len: usize) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..8].copy_from_slice(&seq.to_be_bytes());
    a[8] = typ;
    a[9..11].copy_from_slice(&version);
    // At most 2^14: checked by the caller.
    a[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
    a
}

/// Why the record layer refused a record (each is fatal to the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The record's tag did not verify: tampered, corrupted, or not for these keys.
    BadRecordMac,
    /// A record over its version's size limit.
    RecordOverflow {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A record too short to hold a tag (and for TLS 1.3 a content type).
    ShortRecord {
        /// Its ciphertext length.
        len: usize,
    },
    /// [`RecordLayer::open`] was given something other than exactly one record.
    NotOneRecord {
        /// Bytes given.
        len: usize,
    },
    /// A record type not allowed after the handshake (change_cipher_spec, an unknown type, or a
    /// TLS 1.3 record whose outer type is not application_data).
    UnexpectedContentType(u8),
    /// A TLS 1.2 record whose version is not 0x0303.
    BadVersion(u16),
    /// A TLS 1.3 record that is all padding, with no content type.
    NoContentType,
    /// An alert other than close_notify.
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// The alert's code.
        description: u8,
    },
    /// An alert record that is not exactly one alert.
    BadAlert {
        /// Its length.
        len: usize,
    },
    /// A TLS 1.3 KeyUpdate: the layer has no traffic secret to derive the next keys from.
    KeyUpdate,
    /// A post-handshake handshake message other than a ticket (or a TLS 1.2 HelloRequest).
    UnexpectedHandshake(u8),
    /// A handshake record with no bytes.
    EmptyHandshake,
    /// Application data in the middle of a handshake message split across records.
    InterleavedHandshake,
    /// The sequence number would wrap.
    SequenceExhausted,
    /// ring refused to encrypt (never expected).
    SealFailed,
    /// Secrets this layer cannot use.
    Unsupported(&'static str),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::BadRecordMac => f.write_str("a record failed authentication (bad_record_mac)"),
            RecordError::RecordOverflow { len, limit } => {
                write!(f, "a record of {len} bytes is over the limit of {limit} (record_overflow)")
            }
            RecordError::ShortRecord { len } => write!(f, "a record of {len} bytes is too short to be protected"),
            RecordError::NotOneRecord { len } => write!(f, "{len} bytes given to open are not one whole record"),
            RecordError::UnexpectedContentType(t) => {
                write!(f, "unexpected record type {t} after the handshake (unexpected_message)")
            }
            RecordError::BadVersion(v) => write!(f, "a TLS 1.2 record of version {v:#06x}"),
            RecordError::NoContentType => f.write_str("a TLS 1.3 record with no content type (unexpected_message)"),
            RecordError::Alert { level, description } => {
                let level = match level {
                    1 => "warning",
                    2 => "fatal",
                    _ => "unknown-level",
                };
                write!(f, "the server sent a {level} alert: {} ({description})", alert_name(*description))
            }
            RecordError::BadAlert { len } => write!(f, "an alert record of {len} bytes (one alert is 2)"),
            RecordError::KeyUpdate => f.write_str(
                "the server sent a TLS 1.3 KeyUpdate, which tickfeed's record layer cannot follow \
                 (it has the traffic keys, not the secrets to derive new ones)",
            ),
            RecordError::UnexpectedHandshake(t) => {
                write!(f, "unexpected handshake message type {t} after the handshake")
            }
            RecordError::EmptyHandshake => f.write_str("an empty handshake record"),
            RecordError::InterleavedHandshake => {
                f.write_str("application data inside a handshake message split across records")
            }
            RecordError::SequenceExhausted => f.write_str("the record sequence number would wrap"),
            RecordError::SealFailed => f.write_str("encryption failed"),
            RecordError::Unsupported(what) => write!(f, "the handshake negotiated {what}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// The name of an alert code (RFC 8446 §6, RFC 5246 §7.2).
fn alert_name(code: u8) -> &'static str {
    match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown alert",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::cipher::{AeadKey, Iv};

    /// Secrets for both ends from fixed bytes: the client's rx is the server's tx.
    fn secrets(chacha: bool, c2s: u64, s2c: u64, client: bool) -> ExtractedSecrets {
        let dir = |k: u8| {
            let key = AeadKey::from([k; 32]);
            let iv = Iv::new([k ^ 0x5a; 12]);
            if chacha {
                ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv }
            } else {
                ConnectionTrafficSecrets::Aes256Gcm { key, iv }
            }
        };
        let (c2s, s2c) = ((c2s, dir(1)), (s2c, dir(2)));
        if client {
            ExtractedSecrets { tx: c2s, rx: s2c }
        } else {
            ExtractedSecrets { tx: s2c, rx: c2s }
        }
    }

    fn pair(version: ProtocolVersion, chacha: bool, s2c: u64) -> (RecordLayer, RecordLayer) {
        let c = RecordLayer::new(version, secrets(chacha, 0, s2c, true)).unwrap();
        let s = RecordLayer::new(version, secrets(chacha, 0, s2c, false)).unwrap();
        (c, s)
    }

    const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::TLSv1_2, ProtocolVersion::TLSv1_3];

    fn open_one(c: &mut RecordLayer, rec: &mut [u8]) -> Result<Opened, RecordError> {
        assert_eq!(c.record_len(rec)?, Some(rec.len()));
        c.open(rec)
    }

    #[test]
    fn sealed_records_open_in_place_both_versions_both_families() {
        for v in VERSIONS {
            for chacha in [false, true] {
                let (mut c, mut s) = pair(v, chacha, 3);
                for n in [0usize, 1, 100, MAX_PLAINTEXT] {
                    let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
                    let mut out = Vec::new();
                    s.seal_app_data(&data, &mut out).unwrap();
                    if n == 0 {
                        assert!(out.is_empty());
                        continue;
                    }
                    assert_eq!(out.len(), s.sealed_len(n));
                    let Opened::Data(r) = open_one(&mut c, &mut out).unwrap() else { panic!() };
                    assert_eq!(&out[r], &data[..], "{v:?} chacha={chacha} n={n}");
                }
                assert_eq!(c.rx.seq, 6);
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_a_tag_failure_and_a_replay_fails_too() {
        for v in VERSIONS {
            for chacha in [false, true] {
                let (mut c, mut s) = pair(v, chacha, 0);
                let mut out = Vec::new();
                s.seal_app_data(b"hello world", &mut out).unwrap();
                for i in 0..out.len() {
                    let (mut c2, _) = pair(v, chacha, 0);
                    let mut bad = out.clone();
                    bad[i] ^= 0x01;
                    let r = c2.open(&mut bad);
                    if i >= HEADER_LEN {
                        assert_eq!(r, Err(RecordError::BadRecordMac), "byte {i}");
                    } else {
                        assert!(r.is_err(), "header byte {i}");
                    }
                }
                let copy = out.clone();
                assert!(matches!(open_one(&mut c, &mut out), Ok(Opened::Data(_))));
                // The same record again: the sequence moved on, so it no longer authenticates.
                let mut again = copy;
                assert_eq!(c.open(&mut again), Err(RecordError::BadRecordMac));
            }
        }
    }

    #[test]
    fn the_sequence_never_wraps() {
        for v in VERSIONS {
            let (mut c, mut s) = pair(v, false, u64::MAX - 1);
            let mut out = Vec::new();
            s.seal_app_data(b"last", &mut out).unwrap();
            assert!(matches!(open_one(&mut c, &mut out), Ok(Opened::Data(_))));
            let mut more = Vec::new();
            assert_eq!(s.seal_app_data(b"one more", &mut more), Err(RecordError::SequenceExhausted));
            let mut fake = vec![APPLICATION_DATA, 3, 3, 0, 40];
            fake.resize(45, 0);
            assert_eq!(c.open(&mut fake), Err(RecordError::SequenceExhausted));
        }
    }

    #[test]
    fn headers_are_checked_before_the_body_arrives() {
        let (c13, _) = pair(ProtocolVersion::TLSv1_3, false, 0);
        let (c12, _) = pair(ProtocolVersion::TLSv1_2, false, 0);
        let over13 = (MAX_CIPHERTEXT_13 + 1) as u16;
        let over12 = (MAX_CIPHERTEXT_12 + 1) as u16;
        let h = |t: u8, v: u16, l: u16| [t, (v >> 8) as u8, v as u8, (l >> 8) as u8, l as u8];
        assert_eq!(c13.record_len(&h(23, 0x0303, 100)[..4]), Ok(None));
        assert_eq!(c13.record_len(&h(23, 0x0303, 100)), Ok(None));
        assert_eq!(
            c13.record_len(&h(23, 0x0303, over13)),
            Err(RecordError::RecordOverflow { len: over13.into(), limit: MAX_CIPHERTEXT_13 })
        );
        assert_eq!(c13.record_len(&h(22, 0x0303, 10)), Err(RecordError::UnexpectedContentType(22)));
        assert_eq!(c13.record_len(&h(20, 0x0303, 1)), Err(RecordError::UnexpectedContentType(20)));
        assert_eq!(c12.record_len(&h(23, 0x0303, over13)), Ok(None));
        assert_eq!(
            c12.record_len(&h(23, 0x0303, over12)),
            Err(RecordError::RecordOverflow { len: over12.into(), limit: MAX_CIPHERTEXT_12 })
        );
        assert_eq!(c12.record_len(&h(23, 0x0302, 10)), Err(RecordError::BadVersion(0x0302)));
        assert_eq!(c12.record_len(&h(20, 0x0303, 1)), Err(RecordError::UnexpectedContentType(20)));
        // Too short to carry a tag.
        let (mut c13, _) = pair(ProtocolVersion::TLSv1_3, false, 0);
        let mut short = h(23, 0x0303, 16).to_vec();
        short.resize(21, 0);
        assert_eq!(c13.open(&mut short), Err(RecordError::ShortRecord { len: 16 }));
        let (mut c12, _) = pair(ProtocolVersion::TLSv1_2, false, 0);
        let mut short = h(23, 0x0303, 23).to_vec();
        short.resize(28, 0);
        assert_eq!(c12.open(&mut short), Err(RecordError::ShortRecord { len: 23 }));
    }

    #[test]
    fn alerts_handshake_messages_and_padding() {
        for v in VERSIONS {
            let (mut c, mut s) = pair(v, true, 0);
            let seal = |s: &mut RecordLayer, typ: u8, data: &[u8]| {
                let mut out = Vec::new();
                s.seal(typ, data, &mut out).unwrap();
                out
            };
            assert_eq!(open_one(&mut c, &mut seal(&mut s, ALERT, &[1, 0])), Ok(Opened::CloseNotify));
            let e = open_one(&mut c, &mut seal(&mut s, ALERT, &[2, 40])).unwrap_err();
            assert_eq!(e, RecordError::Alert { level: 2, description: 40 });
            assert!(e.to_string().contains("fatal alert: handshake_failure (40)"), "{e}");
            assert_eq!(
                open_one(&mut c, &mut seal(&mut s, ALERT, &[1, 0, 1, 0])),
                Err(RecordError::BadAlert { len: 4 })
            );
            assert_eq!(open_one(&mut c, &mut seal(&mut s, HANDSHAKE, &[])), Err(RecordError::EmptyHandshake));
            if v == ProtocolVersion::TLSv1_3 {
                // Two tickets, the second split across records, its header too.
                let mut t = vec![NEW_SESSION_TICKET, 0, 0, 3, 9, 9, 9, NEW_SESSION_TICKET, 0];
                assert_eq!(open_one(&mut c, &mut seal(&mut s, HANDSHAKE, &t)), Ok(Opened::Nothing));
                // Application data now would interleave.
                let (mut c2, mut s2) = pair(v, true, 0);
                open_one(&mut c2, &mut seal(&mut s2, HANDSHAKE, &t)).unwrap();
                let e = open_one(&mut c2, &mut seal(&mut s2, APPLICATION_DATA, b"x"));
                assert_eq!(e, Err(RecordError::InterleavedHandshake));
                t = vec![0, 2, 7];
                assert_eq!(open_one(&mut c, &mut seal(&mut s, HANDSHAKE, &t)), Ok(Opened::Nothing));
                assert_eq!(open_one(&mut c, &mut seal(&mut s, HANDSHAKE, &[7])), Ok(Opened::Nothing));
                assert_eq!(c.tickets_skipped(), 2);
                let mut rec = seal(&mut s, APPLICATION_DATA, b"after");
                assert!(matches!(open_one(&mut c, &mut rec), Ok(Opened::Data(r)) if &rec[r.clone()] == b"after"));
                let e = open_one(&mut c, &mut seal(&mut s, HANDSHAKE, &[KEY_UPDATE, 0, 0, 1, 0])).unwrap_err();
                assert_eq!(e, RecordError::KeyUpdate);
                // Padding: content, type, zeros; and all zeros (no type at all).
                let (mut c, mut s) = pair(v, false, 0);
                let mut rec = seal(&mut s, 0, b"");
                assert_eq!(open_one(&mut c, &mut rec), Err(RecordError::NoContentType));
                let (mut c, mut s) = pair(v, false, 0);
                let mut rec = seal(&mut s, 0, &[b'h', b'i', APPLICATION_DATA, 0, 0, 0]);
                // seal put type 0 last: the real type is the last non-zero byte, so "hi" is data.
                assert!(matches!(open_one(&mut c, &mut rec), Ok(Opened::Data(r)) if &rec[r.clone()] == b"hi"));
            } else {
                assert_eq!(
                    open_one(&mut c, &mut seal(&mut s, HANDSHAKE, &[HELLO_REQUEST, 0, 0, 0])),
                    Ok(Opened::Nothing)
                );
                let e = open_one(&mut c, &mut seal(&mut s, HANDSHAKE, &[NEW_SESSION_TICKET, 0, 0, 0]));
                assert_eq!(e, Err(RecordError::UnexpectedHandshake(NEW_SESSION_TICKET)));
            }
        }
    }
}
