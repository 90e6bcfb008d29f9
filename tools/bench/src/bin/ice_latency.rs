//! `ice-latency`: what tickfeed's iceoryx2 fan-out costs from publish to a subscriber in another
//! process: the time from just before `IcePublisher::send` to the subscriber's decode of the
//! sample, across processes, in one run.
//!
//! The publisher (this process) sends one sample per simulated frame, a `diff` record of
//! `--levels` levels and a `top` record, the records a depth message makes, stamped with the
//! wall clock just before the send. It sleeps between frames (`--rate` frames a second), so only
//! the subscriber spins: it is a child process of this one, pinned to core 1, busy-polling the
//! service, and stamps each sample when it has decoded its records. Both read the same clock
//! (CLOCK_REALTIME through the vDSO). Issue 13's target: p50 < 2 µs, p99 < 10 µs.
//!
//! `cargo run --release -p tickfeed-bench --bin ice-latency -- [--frames N] [--rate R] [--levels L] [--spin]`
//!
//! `--spin`: the publisher spins between frames instead of sleeping, as a busy-polling tickfeed
//! does (both processes then spin, one core each; nothing here needs the kernel).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tickfeed::publish::ice::{IcePublisher, IceSubscriber};
use tickfeed::wire::{self, DiffHead, Encoder, Record, StatusRec, SyncStatus, TopRec};

fn wall_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The end marker: a status record with this cause.
const END: u8 = 255;

fn subscriber(venue: &str) {
    // Core 1 by id: the list of cores this process may use is its parent's, which is pinned to
    // core 0 by the time it starts.
    if !core_affinity::set_for_current(core_affinity::CoreId { id: 1 }) {
        eprintln!("ice-latency: could not pin the subscriber to core 1");
    }
    let mut sub = IceSubscriber::open(venue).expect("subscriber");
    println!("ready");
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    let mut done = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done && Instant::now() < deadline {
        sub.poll(|s| {
            let now = wall_ns();
            let mut at = 0;
            let mut stamp = None;
            while let Ok((hd, r)) = wire::decode(&s[at..]) {
                at += hd.len as usize;
                match r {
                    Record::Diff(d) => stamp = Some(d.recv_ns),
                    Record::Status(st) if st.cause == END => done = true,
                    _ => {}
                }
            }
            if let Some(t) = stamp {
                h.saturating_record(u64::try_from(now - t).unwrap_or(0));
            }
        })
        .expect("receive");
    }
    let q = |p: f64| h.value_at_quantile(p);
    println!("{} {} {} {} {} {}", h.len(), q(0.5), q(0.9), q(0.99), q(0.999), h.max());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--subscriber") {
        subscriber(&args[i + 1]);
        return;
    }
    let frames: u64 = arg(&args, "--frames", 100_000);
    let rate: u64 = arg(&args, "--rate", 10_000).max(1);
    let levels: usize = arg(&args, "--levels", 20);
    // --spin: the publisher waits for each frame's time by spinning, as tickfeed's busy-polling
    // hot thread would be running anyway (no network is involved: shared memory only).
    let spin = args.iter().any(|a| a == "--spin");
    let venue = format!("tickfeed/bench{}/records", std::process::id());
    if let Some(c) = core_affinity::get_core_ids().and_then(|ids| ids.into_iter().next()) {
        core_affinity::set_for_current(c);
    }
    let mut publisher = IcePublisher::open(&venue).expect("publisher");
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["--subscriber", &venue])
        .stdout(Stdio::piped())
        .spawn()
        .expect("subscriber process");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready");
    let until = Instant::now() + Duration::from_secs(10);
    while !publisher.wants_snapshots() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut enc = Encoder::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    let lv: Vec<(i64, i64)> = (0..levels as i64).map(|i| (6_183_700 - i, 100_000 + i)).collect();
    let gap = Duration::from_nanos(1_000_000_000 / rate);
    let t0 = Instant::now();
    for n in 0..frames {
        let due = t0 + gap * n as u32;
        if spin {
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        } else {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        buf.clear();
        let stamp = wall_ns();
        let head = DiffHead {
            first_id: n + 1,
            last_id: n + 1,
            prev_id: n,
            exch_time_us: stamp / 1000,
            recv_ns: stamp,
            tick: 1_000_000,
        };
        let half = lv.len() / 2;
        enc.diff(&mut buf, 0, head, lv[..half].iter().copied(), lv[half..].iter().copied()).expect("diff");
        let top = TopRec {
            update_id: n + 1,
            exch_time_us: 0,
            recv_ns: stamp,
            tick: 1_000_000,
            bid: Some(lv[0]),
            ask: Some(lv[0]),
        };
        enc.top(&mut buf, 0, &top);
        publisher.send(&buf);
    }
    let elapsed = t0.elapsed();
    buf.clear();
    enc.status(&mut buf, 0, &StatusRec { status: SyncStatus::Synced, cause: END, update_id: 0, recv_ns: 0 });
    publisher.send(&buf);
    line.clear();
    out.read_line(&mut line).expect("result");
    let _ = child.wait();
    let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if v.len() != 6 {
        eprintln!("ice-latency: the subscriber gave no result ({line:?})");
        std::process::exit(1);
    }
    let c = publisher.counters;
    println!(
        "iceoryx2 publish -> subscriber receive, {} frames of {} B ({} levels + top) at {:.0}/s, publisher {}, {} dropped",
        v[0],
        buf.len().max(24 + 56 + 16 * levels + 88),
        levels,
        frames as f64 / elapsed.as_secs_f64(),
        if spin { "spinning" } else { "sleeping" },
        c.dropped
    );
    println!("  p50 {} ns  p90 {} ns  p99 {} ns  p99.9 {} ns  max {} ns", v[1], v[2], v[3], v[4], v[5]);
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("  target p50 < 2 us: {}   target p99 < 10 us: {}", met(v[1] < 2_000), met(v[3] < 10_000));
}
