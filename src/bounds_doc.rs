//! `docs/reliability.md`'s table of bounds, checked against the constants the code uses: a bound
//! changed in one place and not the other fails here. Each row must also name a counter that
//! `--stats` really writes.

use std::time::Duration;

const DOC: &str = include_str!("../docs/reliability.md");
/// Every file that writes `--stats` keys.
const STATS_SOURCES: [&str; 5] = [
    include_str!("output/stats.rs"),
    include_str!("live/report.rs"),
    include_str!("cmd/replay.rs"),
    include_str!("book/audit.rs"),
    include_str!("cmd/subscribe.rs"),
];

/// The table row whose first cell starts with `what`.
fn row(what: &str) -> &'static str {
    let table = DOC.split("## Bounds").nth(1).expect("docs/reliability.md has a \"## Bounds\" section");
    let mut rows =
        table.lines().take_while(|l| l.starts_with('|') || l.trim().is_empty()).filter(|l| l.starts_with('|'));
    rows.find(|l| l[1..].trim_start().starts_with(what)).unwrap_or_else(|| panic!("no bounds row for {what:?}"))
}

/// `n` bytes as the table writes them: 16 KiB, 64 MiB.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// `n` with thousands separators: 262,144.
fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn secs(d: Duration) -> String {
    if d.as_secs() % 86_400 == 0 && d.as_secs() >= 86_400 {
        format!("{} days", d.as_secs() / 86_400)
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// The row for `what` states each of `bounds` and names each counter in `counters`, and each
/// counter is a key the stats writers emit.
fn check(what: &str, bounds: &[String], counters: &[&str]) {
    let r = row(what);
    let cells: Vec<&str> = r.split('|').map(str::trim).collect();
    let (bound, counted) = (cells[2], cells[4]);
    for b in bounds {
        assert!(bound.contains(b.as_str()), "bounds row {what:?} says {bound:?}; the code's bound is {b}");
    }
    for c in counters {
        assert!(counted.contains(&format!("`{c}`")), "bounds row {what:?} does not name the counter {c}");
        let key = format!("\"{c}\"");
        let key_fmt = format!("\\\"{c}\\\"");
        assert!(
            STATS_SOURCES.iter().any(|s| s.contains(&key) || s.contains(&key_fmt)),
            "bounds row {what:?} names {c}, which no --stats writer emits"
        );
    }
}

#[test]
fn the_table_of_bounds_matches_the_code() {
    use crate::book::{BookConfig, MAX_OVERFLOW_CAP, PENDING_CAP};
    use crate::live::LiveConfig;
    let book = BookConfig::default();
    let sched = crate::binance::schedule::ScheduleConfig::new(1, 1, 0);

    check("websocket frame and message", &[bytes(crate::ws::Limits::default().max_message as u64)], &["reconnects"]);
    check("JSON nesting depth", &[format!("{} levels", crate::binance::MAX_DEPTH)], &["bad_messages"]);
    check("levels a book holds outside", &[count(MAX_OVERFLOW_CAP as u64)], &["evictions"]);
    check("handshake response header", &[bytes(crate::ws::MAX_RESPONSE_HEADER as u64)], &["connect_failures"]);
    check("bytes queued to write", &[bytes(crate::net::conn::MAX_QUEUED_WRITE as u64)], &["write_backlogs"]);
    check("pongs sent", &[format!("{} a second", crate::net::conn::MAX_PONGS_PER_SEC)], &["pings", "pongs"]);
    check("frames a new connection holds", &[bytes(crate::live::held::MAX_HELD_BYTES as u64)], &["held_overflows"]);
    check(
        "frames one redundant connection holds",
        &[bytes(crate::live::event_loop::MAX_AHEAD_BYTES as u64), secs(LiveConfig::DEFAULT_REDUNDANCY_HOLD)],
        &["held_ahead"],
    );
    check(
        "diffs buffered before a snapshot",
        &[
            format!("{} diffs", count(book.max_buffered_diffs as u64)),
            format!("{} levels", count(book.max_buffered_levels as u64)),
        ],
        &["buffer_overflows"],
    );
    check("REST answer body", &[bytes(crate::binance::rest::MAX_BODY)], &["snapshot_failures"]);
    check("`Retry-After`", &[secs(crate::binance::rest::MAX_RETRY_AFTER)], &["rest_429", "rest_418"]);
    check(
        "snapshots the book cannot use",
        &[format!("waits {}", secs(sched.retry_min)), format!("to {}", secs(sched.retry_max))],
        &["stale_snapshots", "malformed_snapshots"],
    );
    check("a replay line", &[bytes(crate::capture::MAX_LINE as u64)], &["long_lines"]);
    check("notices waiting to be written", &[format!("{} per batch", crate::notice::Notices::default().cap)], &[]);
    check("bookTickers waiting", &[format!("{PENDING_CAP} per symbol")], &["book_ticker_overflows"]);
    check(
        "connection attempts",
        &[format!(
            "{} per {} minutes",
            crate::live::supervisor::ATTEMPTS_PER_WINDOW,
            crate::live::supervisor::ATTEMPT_WINDOW.as_secs() / 60
        )],
        &["connect_attempts_delayed"],
    );
    check(
        "streams per connection",
        &[
            format!("({}", LiveConfig::DEFAULT_STREAMS_PER_CONN),
            format!("Binance's {}", count(LiveConfig::MAX_STREAMS_PER_CONN as u64)),
        ],
        &["shards"],
    );
}

#[test]
fn the_fan_out_bounds_match_the_code() {
    let ring = crate::publish::PublishConfig::new(crate::publish::Target::Iceoryx2 { service: None }).ring_bytes;
    check("records waiting for the NATS thread", &[format!("{} ring", bytes(ring as u64))], &["publish_dropped"]);
    check(
        "samples an iceoryx2 subscriber",
        &[format!("{} samples", count(crate::publish::ice::SUBSCRIBER_BUFFER as u64))],
        &["lost"],
    );
    check("a fan-out record", &[bytes(crate::wire::MAX_RECORD_LEN as u64)], &["bad_records"]);
    check(
        "levels a rebuilt book holds",
        &[format!("{} per side", count(crate::wire::replica::MAX_REPLICA_LEVELS as u64))],
        &["drops"],
    );
    check("symbols a subscriber follows", &[count(crate::cmd::MAX_SUBSCRIBED_SYMBOLS as u64)], &["ignored_symbols"]);
    check("a `--metrics` request", &[bytes(crate::metrics::MAX_REQUEST as u64)], &["metrics_scrapes"]);
}

#[test]
fn a_changed_bound_is_caught() {
    // The checker itself: a row stating another figure than the code fails.
    let r = std::panic::catch_unwind(|| check("REST answer body", &[bytes(16 << 20)], &[]));
    assert!(r.is_err());
    let r = std::panic::catch_unwind(|| check("REST answer body", &[], &["no_such_counter"]));
    assert!(r.is_err());
    assert_eq!(count(262_144), "262,144");
    assert_eq!(bytes(64 << 10), "64 KiB");
}
