//! The fan-out end to end: `tickfeed run --publish` against the simulator, `tickfeed subscribe`
//! in another process, and the rebuilt book compared with the publisher's `--dump-book` (and the
//! simulator's reference) at the same update id; over iceoryx2 and over a real nats-server
//! (`.ci/run` installs it; elsewhere the NATS tests skip, saying so). Also `--metrics`.

mod util;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::{spawn_tickfeed, wait_tickfeed, RunArgs};

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The subscriber's dump is byte for byte the publisher's; returns their update id.
fn assert_same_dump(publisher: &Path, subscriber: &Path, symbol: &str) -> u64 {
    let a = std::fs::read_to_string(publisher.join(format!("{symbol}.json"))).unwrap();
    let b = std::fs::read_to_string(subscriber.join(format!("{symbol}.json")))
        .unwrap_or_else(|e| panic!("the subscriber dumped no {symbol} book: {e}"));
    let id = serde_json::from_str::<serde_json::Value>(&a).unwrap()["lastUpdateId"].as_u64().unwrap();
    assert!(a == b, "{symbol}: the rebuilt book differs from the publisher's at {id}");
    id
}

/// Every line the subscriber printed after its first (the book it joined with) is one the
/// publisher printed, in the same order, ending at the same last line.
fn assert_lines_follow(publisher: &str, subscriber: &str) -> usize {
    let pub_lines: Vec<&str> = publisher.lines().collect();
    let sub_lines: Vec<&str> = subscriber.lines().collect();
    assert!(sub_lines.len() > 10, "the subscriber printed {} lines", sub_lines.len());
    let mut at = 0;
    for l in &sub_lines[1..] {
        match pub_lines[at..].iter().position(|p| p == l) {
            Some(i) => at += i + 1,
            None => panic!("the subscriber printed a line the publisher did not (in order): {l}"),
        }
    }
    assert_eq!(sub_lines.last(), pub_lines.last(), "both end at the same book");
    sub_lines.len()
}

#[test]
fn an_iceoryx2_subscriber_that_joins_late_rebuilds_the_published_book() {
    let _one = util::serial();
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("fanout-ice");
    let target = format!("iceoryx2:tickfeed/test{}/records", std::process::id());
    let publisher = RunArgs::against(&sim)
        .duration(6.0)
        .output("tob-json")
        .dump_book(dir.join("pub"))
        .stats(dir.join("pub.json"))
        .flag("--publish", &target)
        .spawn();
    // Joins once the book is synced: it starts from the snapshot sent when it joins.
    std::thread::sleep(Duration::from_millis(1500));
    let (sub_dump, sub_stats) = (dir.join("sub"), dir.join("sub.json"));
    let subscriber = spawn_tickfeed(&[
        "subscribe",
        "--from",
        &target,
        "--output",
        "tob-json",
        "--duration",
        "7",
        "--dump-book",
        sub_dump.to_str().unwrap(),
        "--stats",
        sub_stats.to_str().unwrap(),
    ]);
    let p = wait_tickfeed(publisher, Duration::from_secs(30));
    let s = wait_tickfeed(subscriber, Duration::from_secs(30));
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    let id = assert_same_dump(&dir.join("pub"), &sub_dump, "BTCUSDT");
    assert_eq!(util::assert_dump_matches(&sim, &dir.join("pub"), "BTCUSDT"), id);
    let n = assert_lines_follow(&p.stdout, &s.stdout);
    let (ps, ss) = (json(&dir.join("pub.json")), json(&sub_stats));
    assert!(ps["publish_records"].as_u64().unwrap() > 100, "{ps}");
    assert_eq!(ps["publish_dropped"], 0);
    assert!(ps["publish_snapshot_rounds"].as_u64().unwrap() >= 1, "the joiner was seen: {ps}");
    assert_eq!((ss["lost"].as_u64(), ss["drops"].as_u64(), ss["bad_records"].as_u64()), (Some(0), Some(0), Some(0)));
    assert!(ss["snapshots"].as_u64().unwrap() >= 1);
    assert_eq!(ss["symbols"]["BTCUSDT"]["lastUpdateId"].as_u64(), Some(id));
    eprintln!("iceoryx2: {n} lines rebuilt, book equal at {id}");
}

/// A nats-server on a free loopback port, or `None` (with a line saying so) where it is not
/// installed. CI installs it (`.ci/run`), so there a missing server fails the test.
struct Nats {
    child: Child,
    port: u16,
}

impl Nats {
    fn start() -> Option<Nats> {
        let port = free_port();
        Nats::start_on(port)
    }

    fn start_on(port: u16) -> Option<Nats> {
        let child = match Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "CI must have nats-server (.ci/run installs it): {e}");
                eprintln!(
                    "skipped: nats-server is not installed ({e}); `apt-get install nats-server` runs these tests"
                );
                return None;
            }
        };
        let n = Nats { child, port };
        util::wait_until("nats-server listening", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(n)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_nats_subscriber_rebuilds_the_published_book() {
    let _one = util::serial();
    let Some(nats) = Nats::start() else { return };
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("fanout-nats");
    let (sub_dump, sub_stats) = (dir.join("sub"), dir.join("sub.json"));
    // Subscribed before the publisher starts: it sees every record, the first snapshot included.
    let subscriber = spawn_tickfeed(&[
        "subscribe",
        "--from",
        &nats.url(),
        "--symbol",
        "btcusdt",
        "--output",
        "tob-json",
        "--duration",
        "8",
        "--dump-book",
        sub_dump.to_str().unwrap(),
        "--stats",
        sub_stats.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let p = RunArgs::against(&sim)
        .duration(5.0)
        .output("tob-json")
        .dump_book(dir.join("pub"))
        .stats(dir.join("pub.json"))
        .flag("--publish", &nats.url())
        .flag("--publish-snapshot-secs", "1")
        .run(Duration::from_secs(30));
    let s = wait_tickfeed(subscriber, Duration::from_secs(30));
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    let id = assert_same_dump(&dir.join("pub"), &sub_dump, "BTCUSDT");
    assert_eq!(util::assert_dump_matches(&sim, &dir.join("pub"), "BTCUSDT"), id);
    assert_lines_follow(&p.stdout, &s.stdout);
    let (ps, ss) = (json(&dir.join("pub.json")), json(&sub_stats));
    let records = ps["publish_records"].as_u64().unwrap();
    assert!(records > 100, "{ps}");
    assert_eq!(ps["publish_dropped"], 0);
    assert_eq!(ps["publish_sent"].as_u64(), Some(records), "every record reached the server: {ps}");
    assert!(ps["publish_snapshot_rounds"].as_u64().unwrap() >= 3, "periodic snapshots: {ps}");
    assert_eq!(ss["records"].as_u64(), Some(records), "every record reached the subscriber: {ss}");
    assert_eq!((ss["lost"].as_u64(), ss["drops"].as_u64()), (Some(0), Some(0)), "{ss}");
}

#[test]
fn json_payloads_on_nats_name_their_kind_and_symbol() {
    let _one = util::serial();
    let Some(nats) = Nats::start() else { return };
    let sim = util::sim(false, &["btcusdt"]);
    let url = nats.url();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The client and its subscription spawn onto (and unsubscribe through) this runtime.
    let _in_rt = rt.enter();
    let client = rt.block_on(async_nats::connect(format!("127.0.0.1:{}", nats.port))).unwrap();
    let mut sub = rt.block_on(client.subscribe("tickfeed.spot.BTCUSDT.>")).unwrap();
    rt.block_on(client.flush()).unwrap();
    let p = RunArgs::against(&sim)
        .duration(3.0)
        .output("none")
        .streams("depth,trade")
        .flag("--publish", &url)
        .flag("--publish-format", "json")
        .run(Duration::from_secs(30));
    assert_eq!(p.code, Some(0), "{}", p.stderr);
    let mut kinds = std::collections::BTreeMap::new();
    rt.block_on(async {
        use futures_util::StreamExt;
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("each payload is one JSON object");
            let kind = v["kind"].as_str().unwrap().to_string();
            assert_eq!(m.subject.as_str(), format!("tickfeed.spot.BTCUSDT.{kind}"));
            assert_eq!(v["symbol"], "BTCUSDT");
            if kind == "diff" {
                assert!(v["b"].is_array() && v["u"].as_u64().unwrap() >= v["U"].as_u64().unwrap());
            }
            *kinds.entry(kind).or_insert(0u64) += 1;
        }
    });
    for k in ["symbol", "status", "snapshot", "diff", "top", "trade"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k} record: {kinds:?}");
    }
}

#[test]
fn a_dead_or_restarted_nats_never_stalls_the_feed() {
    let _one = util::serial();
    let Some(nats) = Nats::start() else { return };
    let port = nats.port;
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("fanout-nats-dead");
    let started = Instant::now();
    let run = RunArgs::against(&sim)
        .duration(8.0)
        .output("none")
        .stats(dir.join("s.json"))
        .flag("--publish", &nats.url())
        .spawn();
    // The server goes away for two seconds in the middle of the run, then comes back.
    std::thread::sleep(Duration::from_secs(2));
    drop(nats);
    std::thread::sleep(Duration::from_secs(2));
    let back = Nats::start_on(port).expect("restart nats-server");
    let r = wait_tickfeed(run, Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(14), "the run ended late: {:?}", started.elapsed());
    let s = json(&dir.join("s.json"));
    assert!(s["symbols"]["BTCUSDT"]["synced"].as_bool().unwrap(), "{s}");
    assert!(s["events"].as_u64().unwrap() > 300, "the feed went on: {s}");
    assert!(s["publish_connects"].as_u64().unwrap() >= 2, "the link reconnected: {s}");
    drop(back);
    // No server at all: the run is the same run, on time.
    let dead = free_port();
    let t = Instant::now();
    let r = RunArgs::against(&sim)
        .duration(3.0)
        .output("none")
        .stats(dir.join("d.json"))
        .flag("--publish", &format!("nats://127.0.0.1:{dead}"))
        .run(Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(t.elapsed() < Duration::from_secs(9), "ended late: {:?}", t.elapsed());
    let d = json(&dir.join("d.json"));
    assert!(d["symbols"]["BTCUSDT"]["synced"].as_bool().unwrap(), "{d}");
    assert_eq!(d["publish_sent"], 0, "{d}");
    assert_eq!(d["publish_connects"], 0, "{d}");
}

fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn metrics_are_served_while_the_feed_runs() {
    let _one = util::serial();
    let sim = util::sim(false, &["btcusdt", "ethusdt"]);
    let dir = util::temp_dir("metrics");
    let port = free_port();
    let run = RunArgs::against(&sim)
        .duration(4.0)
        .symbols("btcusdt,ethusdt")
        .output("none")
        .stats(dir.join("s.json"))
        .flag("--metrics", &format!("127.0.0.1:{port}"))
        .spawn();
    util::wait_until("the metrics port", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // Once both books are synced (the copy is made once a second).
    let mut text = String::new();
    util::wait_until("both books synced in the metrics", Duration::from_secs(10), || {
        text = scrape(port);
        text.contains("tickfeed_symbol_synced{symbol=\"BTCUSDT\"} 1")
            && text.contains("tickfeed_symbol_synced{symbol=\"ETHUSDT\"} 1")
    });
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    for key in [
        "tickfeed_events_total ",
        "tickfeed_gaps_total ",
        "tickfeed_resyncs_total ",
        "tickfeed_reconnects_total ",
        "tickfeed_book_ticker_mismatches_total ",
        "tickfeed_latency_us{quantile=\"0.99\"}",
        "tickfeed_process_ns{quantile=\"0.5\"}",
        "tickfeed_connection_up{connection=\"0\"} 1",
        "tickfeed_connection_frames_total{connection=\"0\"}",
        "tickfeed_symbol_state{symbol=\"BTCUSDT\",state=\"synced\"} 1",
        "# EOF",
    ] {
        assert!(text.contains(key), "no {key} in\n{text}");
    }
    let r = wait_tickfeed(run, Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let s = json(&dir.join("s.json"));
    assert!(s["metrics_scrapes"].as_u64().unwrap() >= 1, "{s}");
    // A port in use is a one-line configuration error.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let r = RunArgs::against(&sim).duration(2.0).flag("--metrics", &addr).run(Duration::from_secs(30));
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.trim().lines().count() == 1 && r.stderr.contains("--metrics"), "{}", r.stderr);
}

/// `replay --publish` is a feed for subscribers too: the real 0808 recording replayed at 100x its
/// recorded pace to iceoryx2, and a subscriber that was there from the start ends with the
/// replay's own `--dump-book`, byte for byte. Skips, saying so, without the recordings.
#[test]
fn a_paced_replay_publishes_the_recordings_book() {
    let _one = util::serial();
    let Some(rec) = util::recording("btcusdt_20240808.gz") else { return };
    let dir = util::temp_dir("fanout-replay");
    let target = format!("iceoryx2:tickfeed/replay{}/records", std::process::id());
    let sub_dump = dir.join("sub");
    let subscriber = spawn_tickfeed(&[
        "subscribe",
        "--from",
        &target,
        "--output",
        "none",
        "--duration",
        "12",
        "--dump-book",
        sub_dump.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(700));
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["replay", "--output", "none", "--quiet", "--trust-beyond-snapshot", "--speed", "100"])
        .args(["--publish", &target, "--dump-book"])
        .arg(dir.join("pub"))
        .arg("--stats")
        .arg(dir.join("pub.json"))
        .arg(&rec)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = wait_tickfeed(subscriber, Duration::from_secs(30));
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    assert_same_dump(&dir.join("pub"), &sub_dump, "BTCUSDT");
    let ps = json(&dir.join("pub.json"));
    assert!(ps["publish_records"].as_u64().unwrap() > 10_000, "{ps}");
    assert_eq!(ps["publish_dropped"], 0, "{ps}");
}
