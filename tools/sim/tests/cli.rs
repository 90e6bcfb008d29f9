//! `tickfeed sim` end to end through `run_cli_with`: the one "listening on" line, a usable port,
//! `--cert-out` writing a CA a TLS client can trust, `--help`, and bad flags exiting 2 with one
//! line.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Starts the CLI in a thread; returns the printed line, the stop flag and the thread.
fn start(a: &[&str]) -> (String, Arc<AtomicBool>, std::thread::JoinHandle<i32>) {
    let out = Shared::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (o, s, a) = (out.clone(), stop.clone(), args(a));
    let t = std::thread::spawn(move || {
        let mut o = o;
        let mut e = Shared::default();
        let code = tickfeed_sim::run_cli_with(&a, &mut o, &mut e, &|| s.load(Ordering::Relaxed));
        assert!(e.text().is_empty() || code != 0, "stderr: {}", e.text());
        code
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = out.text();
        if text.ends_with('\n') {
            assert_eq!(text.lines().count(), 1, "exactly one stdout line: {text:?}");
            return (text.trim_end().to_string(), stop, t);
        }
        assert!(Instant::now() < deadline, "no listening line");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn plain_cli_prints_its_port_and_serves_rest() {
    let (line, stop, t) =
        start(&["--listen", "127.0.0.1:0", "--plain", "--symbol", "ETHUSDT", "--levels", "200", "--rate", "1000"]);
    let addr = line.strip_prefix("listening on ws://").expect(&line);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /api/v3/depth?symbol=ETHUSDT&limit=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.contains("{\"lastUpdateId\":"));
    stop.store(true, Ordering::Relaxed);
    assert_eq!(t.join().unwrap(), 0);
}

#[test]
fn tls_cli_writes_a_ca_clients_can_trust() {
    let pem_path = std::env::temp_dir().join(format!("tickfeed-sim-ca-{}.pem", std::process::id()));
    let (line, stop, t) =
        start(&["--listen", "127.0.0.1:0", "--cert-out", pem_path.to_str().unwrap(), "--levels", "200"]);
    let addr = line.strip_prefix("listening on wss://").expect(&line);
    let pem = std::fs::read(&pem_path).unwrap();
    let ca = CertificateDer::from_pem_slice(&pem).expect("a PEM certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    for host in ["127.0.0.1", "localhost"] {
        let conn = rustls::ClientConnection::new(Arc::new(cfg.clone()), ServerName::try_from(host).unwrap()).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut resp = Vec::new();
        let _ = tls.read_to_end(&mut resp);
        let resp = String::from_utf8(resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK") && resp.ends_with("{}"), "{host}: {resp}");
    }
    stop.store(true, Ordering::Relaxed);
    assert_eq!(t.join().unwrap(), 0);
    let _ = std::fs::remove_file(pem_path);
}

#[test]
fn help_and_bad_flags() {
    let (mut out, mut err) = (Shared::default(), Shared::default());
    assert_eq!(tickfeed_sim::run_cli_with(&args(&["--help"]), &mut out, &mut err, &|| true), 0);
    for flag in [
        "--listen",
        "--plain",
        "--cert-out",
        "--symbol",
        "--replay",
        "--rate",
        "--seed",
        "--fragment",
        "--ping-interval",
    ] {
        assert!(out.text().contains(flag), "help documents {flag}");
    }
    for bad in [&["--nope"][..], &["--rate", "x"][..], &["--replay", "/nonexistent/file.gz"][..]] {
        let (mut out, mut err) = (Shared::default(), Shared::default());
        assert_eq!(tickfeed_sim::run_cli_with(&args(bad), &mut out, &mut err, &|| true), 2, "{bad:?}");
        assert!(out.text().is_empty());
        assert_eq!(err.text().lines().count(), 1, "one line: {:?}", err.text());
    }
}
