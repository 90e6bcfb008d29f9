//! The whole path bytes -> book for one real depth message, TLS decryption included, in memory.
//!
//! Every depth frame of the real BTCUSDT recording that follows its REST snapshot is written by a
//! rustls server as one websocket text frame (one `write`, so one TLS record for a frame under
//! 16 KiB) and collected as ciphertext. The client side then takes each message's ciphertext and,
//! between two clock reads, decrypts it, websocket-decodes it (`tickfeed::ws::Decoder`) and runs
//! it through `tickfeed::pipeline::Pipeline::on_frame` (output mode `none`), exactly as the live
//! loop does after a socket read. Side by side, same frames, same run:
//!
//! - `plain`: no TLS at all: the frame bytes copied into the websocket buffer (what a socket read
//!   does), decode, pipeline. The floor the two TLS paths add to.
//! - `rustls`: rustls 0.23's buffered `ClientConnection`, tickfeed's path before issue 11:
//!   `read_tls` (copies the record in), `process_new_packets` (decrypts, copies the plaintext into
//!   a fresh `Vec`), `reader().read` into the websocket buffer.
//! - `record_layer`: tickfeed's record layer (`tickfeed::net::RecordLayer`) on secrets rustls
//!   extracted after the same handshake: the ciphertext copied into a buffer (what the socket read
//!   does), each record opened in place, its plaintext copied into the websocket buffer.
//!
//! Per message: one clock read (`Instant::now`) before and one after; the clock's own cost is
//! printed (an empty pair) and included in every figure. 5 runs, each with a fresh handshake and a
//! fresh pipeline synced from the snapshot; p50, p90, p99, p99.9 per run and their spread (min to
//! max across runs). TLS 1.3 with AES-128-GCM is what the simulator and Binance negotiate with
//! rustls' defaults; `TICKFEED_BENCH_SUITE=chacha|aes256|tls12` picks another.
//!
//! Needs ../shared/data/binance (or $TICKFEED_DATA); without it the bench prints why and exits.
//! `cargo bench --bench path`.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use rustls::crypto::ring::cipher_suite as cs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, SupportedCipherSuite,
    SupportedProtocolVersion,
};
use tickfeed::binance::{split_envelope, Envelope};
use tickfeed::net::{Opened, RecordLayer};
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{FrameOutcome, Pipeline, PipelineConfig};
use tickfeed::ws::{Decoder, Event, Limits};

const RUNS: usize = 5;

struct Data {
    /// Lines up to and including the snapshot: they sync the pipeline (not measured).
    warm: Vec<(i64, Vec<u8>)>,
    /// The depth frames after the snapshot, as received (the combined-stream envelope).
    depth: Vec<(i64, Vec<u8>)>,
}

fn load() -> Option<Data> {
    let lines = common::btcusdt_0808("bench path")?;
    let mut d = Data { warm: vec![], depth: vec![] };
    let mut synced = false;
    for (ns, json) in lines {
        if synced {
            if matches!(split_envelope(&json), Ok(Envelope::Stream { stream, .. }) if stream.contains("@depth")) {
                d.depth.push((ns, json));
            }
        } else {
            synced = matches!(split_envelope(&json), Ok(Envelope::Snapshot(_)));
            d.warm.push((ns, json));
        }
    }
    if !synced || d.depth.is_empty() {
        println!("SKIP bench path: no snapshot line followed by depth frames in btcusdt_20240808.gz");
        return None;
    }
    Some(d)
}

fn pipeline(d: &Data) -> Pipeline {
    let cfg = PipelineConfig { output: OutputMode::None, ..Default::default() };
    let mut p = Pipeline::new(cfg, &["btcusdt"]);
    for (ns, json) in &d.warm {
        if p.on_frame(*ns, json) == FrameOutcome::Snapshot {
            let _ = p.on_snapshot(0, *ns, json);
        }
    }
    p
}

/// An unmasked server text frame.
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

struct Certs {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

fn certs(version: &'static SupportedProtocolVersion, suite: SupportedCipherSuite) -> Certs {
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
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    let mut client = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.enable_secret_extraction = true;
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
    Certs { client: Arc::new(client), server: Arc::new(server) }
}

/// A completed handshake in memory (tickets included), then every frame encrypted by the server,
/// one `write` each: the ciphertext per message.
fn session(c: &Certs, d: &Data) -> (ClientConnection, Vec<Vec<u8>>) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = ClientConnection::new(c.client.clone(), name).unwrap();
    let mut server = ServerConnection::new(c.server.clone()).unwrap();
    server.set_buffer_limit(None);
    let mut buf = Vec::new();
    for _ in 0..10 {
        buf.clear();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut s = &buf[..];
        while !s.is_empty() {
            server.read_tls(&mut s).unwrap();
            server.process_new_packets().unwrap();
        }
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut s = &buf[..];
        while !s.is_empty() {
            client.read_tls(&mut s).unwrap();
            client.process_new_packets().unwrap();
        }
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() && !server.wants_write() {
            break;
        }
    }
    assert!(!client.is_handshaking());
    let cts = d
        .depth
        .iter()
        .map(|(_, json)| {
            server.writer().write_all(&ws_frame(json)).unwrap();
            let mut ct = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut ct).unwrap();
            }
            ct
        })
        .collect();
    (client, cts)
}

/// The websocket side shared by the three paths: decode what is buffered, run each text frame
/// through the pipeline.
struct Ws {
    dec: Decoder,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Ws {
    fn new() -> Ws {
        let dec = Decoder::new(Limits::default());
        let buf = vec![0u8; dec.buffer_len() + 64 * 1024];
        Ws { dec, buf, start: 0, end: 0 }
    }

    #[inline(always)]
    fn run(&mut self, ns: i64, p: &mut Pipeline) -> u64 {
        let mut n = 0;
        loop {
            let d = self.dec.decode(&self.buf[self.start..self.end]).unwrap();
            let consumed = d.consumed;
            match d.event {
                Some(Event::Text(s)) => {
                    if matches!(p.on_frame(ns, s.as_bytes()), FrameOutcome::Market { .. }) {
                        n += 1;
                    }
                }
                Some(_) => panic!("not a text frame"),
                None => {
                    self.start += consumed;
                    break;
                }
            }
            self.start += consumed;
        }
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        n
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Plain,
    Rustls,
    RecordLayer,
}

/// One run of one path: ns per message.
fn run(path: Path, certs: &Certs, d: &Data) -> (Vec<u64>, u64) {
    let mut p = pipeline(d);
    let mut ws = Ws::new();
    let mut times = Vec::with_capacity(d.depth.len());
    let mut applied = 0;
    match path {
        Path::Plain => {
            let frames: Vec<Vec<u8>> = d.depth.iter().map(|(_, j)| ws_frame(j)).collect();
            for (f, (ns, _)) in frames.iter().zip(&d.depth) {
                let t0 = Instant::now();
                ws.buf[ws.end..ws.end + f.len()].copy_from_slice(f);
                ws.end += f.len();
                applied += ws.run(*ns, &mut p);
                times.push(t0.elapsed().as_nanos() as u64);
            }
        }
        Path::Rustls => {
            let (mut client, cts) = session(certs, d);
            for (ct, (ns, _)) in cts.iter().zip(&d.depth) {
                let t0 = Instant::now();
                let mut s = &ct[..];
                while !s.is_empty() {
                    client.read_tls(&mut s).unwrap();
                    client.process_new_packets().unwrap();
                }
                loop {
                    match client.reader().read(&mut ws.buf[ws.end..]) {
                        Ok(n) => ws.end += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                applied += ws.run(*ns, &mut p);
                times.push(t0.elapsed().as_nanos() as u64);
            }
        }
        Path::RecordLayer => {
            let (client, cts) = session(certs, d);
            let version = client.protocol_version().unwrap();
            let mut rl = RecordLayer::new(version, client.dangerous_extract_secrets().unwrap()).unwrap();
            let mut inbuf = vec![0u8; 64 * 1024 + tickfeed::net::record::MAX_RECORD];
            for (ct, (ns, _)) in cts.iter().zip(&d.depth) {
                let t0 = Instant::now();
                inbuf[..ct.len()].copy_from_slice(ct);
                let mut at = 0;
                while let Some(len) = rl.record_len(&inbuf[at..ct.len()]).unwrap() {
                    let rec = &mut inbuf[at..at + len];
                    if let Opened::Data(r) = rl.open(rec).unwrap() {
                        let k = r.len();
                        ws.buf[ws.end..ws.end + k].copy_from_slice(&rec[r]);
                        ws.end += k;
                    }
                    at += len;
                }
                applied += ws.run(*ns, &mut p);
                times.push(t0.elapsed().as_nanos() as u64);
            }
        }
    }
    (times, applied)
}

fn pct(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

const QS: [(f64, &str); 4] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")];

fn main() {
    let Some(d) = load() else { return };
    let (version, suite, label): (&'static SupportedProtocolVersion, _, _) = match std::env::var("TICKFEED_BENCH_SUITE")
        .as_deref()
    {
        Ok("chacha") => (&rustls::version::TLS13, cs::TLS13_CHACHA20_POLY1305_SHA256, "TLS 1.3 CHACHA20_POLY1305"),
        Ok("aes256") => (&rustls::version::TLS13, cs::TLS13_AES_256_GCM_SHA384, "TLS 1.3 AES_256_GCM"),
        Ok("tls12") => {
            (&rustls::version::TLS12, cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "TLS 1.2 ECDHE_ECDSA_AES_128_GCM")
        }
        _ => (&rustls::version::TLS13, cs::TLS13_AES_128_GCM_SHA256, "TLS 1.3 AES_128_GCM"),
    };
    let certs = certs(version, suite);
    let sizes: Vec<u64> = {
        let mut s: Vec<u64> = d.depth.iter().map(|(_, j)| j.len() as u64).collect();
        s.sort_unstable();
        s
    };
    println!(
        "path: {} depth messages after the snapshot (frame bytes p50 {}, max {}), {label}, {RUNS} runs",
        d.depth.len(),
        pct(&sizes, 0.5),
        sizes[sizes.len() - 1]
    );
    let mut empty: Vec<u64> = (0..100_000)
        .map(|_| {
            let t0 = Instant::now();
            t0.elapsed().as_nanos() as u64
        })
        .collect();
    empty.sort_unstable();
    println!("clock pair alone (included below): p50 {} ns, p99 {} ns", pct(&empty, 0.5), pct(&empty, 0.99));
    let paths = [(Path::Plain, "plain"), (Path::Rustls, "rustls"), (Path::RecordLayer, "record_layer")];
    // results[path][run][q]
    let mut results = vec![vec![[0u64; 4]; RUNS]; paths.len()];
    for r in 0..RUNS {
        // Interleaved per run, so drift on a shared machine hits every path alike.
        for (&(path, name), per_path) in paths.iter().zip(results.iter_mut()) {
            let (mut t, applied) = run(path, &certs, &d);
            t.sort_unstable();
            let q = &mut per_path[r];
            for (j, (p, _)) in QS.iter().enumerate() {
                q[j] = pct(&t, *p);
            }
            println!(
                "run {} {name:>12}: p50 {:>6} p90 {:>6} p99 {:>6} p99.9 {:>6} ns  ({applied} applied)",
                r + 1,
                q[0],
                q[1],
                q[2],
                q[3]
            );
        }
    }
    println!("spread over {RUNS} runs (min..max, ns):");
    for (i, (_, name)) in paths.iter().enumerate() {
        let mut line = format!("{name:>12}:");
        for (j, (_, qn)) in QS.iter().enumerate() {
            let lo = results[i].iter().map(|q| q[j]).min().unwrap();
            let hi = results[i].iter().map(|q| q[j]).max().unwrap();
            line.push_str(&format!(" {qn} {lo}..{hi}"));
        }
        println!("{line}");
    }
}
