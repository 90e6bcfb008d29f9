//! `nats-rate`: issue 13's NATS targets, measured in one run on this host.
//!
//! - 100k records/s sustained to a local nats-server with zero loss at the subscriber;
//! - the feed's `process_ns` unchanged within noise with publishing on.
//!
//! The simulator (in this process, plain websocket) runs a synthetic BTCUSDT market at a fixed
//! message rate; `tickfeed run --no-busy-poll` (the release binary) reads it for `--secs`, with
//! and without `--publish nats://...`, in alternation, `--rounds` times each. A subscriber in this
//! process (async-nats, its own thread) counts every record on `tickfeed.spot.>`. Reported per
//! run: messages/s in, records/s published, records received, loss, and process_ns p50/p99.
//!
//! `cargo build --release && cargo run --release -p tickfeed-bench --bin nats-rate -- [--rate N]
//! [--secs S] [--rounds R] [--tickfeed PATH]` (needs `nats-server` on PATH).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tickfeed_sim::{MarketSource, Pacing, Sim, SimConfig};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

struct Row {
    publish: bool,
    events: u64,
    records: u64,
    received: u64,
    dropped: u64,
    p50: u64,
    p99: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: u32 = arg(&args, "--rate", 60_000);
    let secs: f64 = arg(&args, "--secs", 10.0);
    let rounds: usize = arg(&args, "--rounds", 3);
    let tickfeed: String = arg(&args, "--tickfeed", "target/release/tickfeed".to_string());
    let port = free_port();
    let mut server = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server on PATH (apt-get install nats-server)");
    std::thread::sleep(Duration::from_millis(500));
    // The subscriber: counts records (one per message) into the current run's counter.
    let received = Arc::new(AtomicU64::new(0));
    let (r2, ready) = (received.clone(), Arc::new(AtomicBool::new(false)));
    let ready2 = ready.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            use futures_util::StreamExt;
            let c = async_nats::ConnectOptions::new()
                .subscription_capacity(1 << 20)
                .connect(format!("127.0.0.1:{port}"))
                .await
                .expect("subscriber connects");
            let mut sub = c.subscribe("tickfeed.spot.>").await.expect("subscribe");
            c.flush().await.expect("flush");
            ready2.store(true, Ordering::Relaxed);
            while sub.next().await.is_some() {
                r2.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    while !ready.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let sim = Sim::start(SimConfig {
        tls: false,
        pacing: Pacing::Rate(rate),
        levels_per_side: 1000,
        source: MarketSource::Synthetic { symbols: vec!["btcusdt".into()], seed: 7 },
        ..SimConfig::default()
    })
    .expect("simulator");
    let dir = std::env::temp_dir().join(format!("tickfeed-nats-rate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut rows = Vec::new();
    for round in 0..rounds * 2 {
        let publish = round % 2 == 1;
        let stats = dir.join(format!("s{round}.json"));
        let before = received.load(Ordering::Relaxed);
        let mut c = Command::new(&tickfeed);
        c.args(["run", "--ws-url", &sim.ws_base(), "--rest-url", &sim.rest_base(), "--no-busy-poll"])
            .args(["--streams", "depth,trade,aggTrade", "--output", "none", "--duration", &secs.to_string()])
            .args(["--stats", stats.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if publish {
            c.args(["--publish", &format!("nats://127.0.0.1:{port}")]);
        }
        let status = c.status().expect("run tickfeed");
        assert!(status.success(), "tickfeed run failed");
        // What is still on its way to the subscriber.
        let mut last = received.load(Ordering::Relaxed);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = received.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats")).expect("stats JSON");
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        rows.push(Row {
            publish,
            events: n("events"),
            records: n("publish_records"),
            received: last - before,
            dropped: n("publish_dropped"),
            p50: v["process_ns"]["p50"].as_u64().unwrap_or(0),
            p99: v["process_ns"]["p99"].as_u64().unwrap_or(0),
        });
        let r = rows.last().expect("row");
        println!(
            "{:<9} events/s {:>7.0}  records/s {:>7.0}  received {:>8}  lost {:>6}  ring dropped {:>5}  process_ns p50 {:>6} p99 {:>7}",
            if publish { "publish" } else { "no publish" },
            r.events as f64 / secs,
            r.records as f64 / secs,
            r.received,
            if publish { r.records.saturating_sub(r.received) } else { 0 },
            r.dropped,
            r.p50,
            r.p99
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let on: Vec<&Row> = rows.iter().filter(|r| r.publish).collect();
    let off: Vec<&Row> = rows.iter().filter(|r| !r.publish).collect();
    let min_rate = on.iter().map(|r| r.records as f64 / secs).fold(f64::MAX, f64::min);
    let lost: u64 = on.iter().map(|r| r.records.saturating_sub(r.received) + r.dropped).sum();
    let med = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (p50_on, p50_off) =
        (med(&mut on.iter().map(|r| r.p50).collect()), med(&mut off.iter().map(|r| r.p50).collect()));
    let (p99_on, p99_off) =
        (med(&mut on.iter().map(|r| r.p99).collect()), med(&mut off.iter().map(|r| r.p99).collect()));
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "records/s published (lowest run) {min_rate:.0}, lost {lost}: target 100k/s with zero loss: {}",
        met(min_rate >= 100_000.0 && lost == 0)
    );
    println!(
        "process_ns median of runs: p50 {p50_off} -> {p50_on} ns, p99 {p99_off} -> {p99_on} ns with publishing on (ratio p50 {:.2}x, p99 {:.2}x)",
        p50_on as f64 / p50_off.max(1) as f64,
        p99_on as f64 / p99_off.max(1) as f64
    );
}
