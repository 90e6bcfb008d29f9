//! `tickfeed subscribe --from iceoryx2|nats://HOST:PORT`: books rebuilt from the fan-out records
//! and printed in the same output lines as `tickfeed run`, which shows that the records carry
//! everything a book needs.
//!
//! Each symbol's book is a [`Replica`]: it starts from a `snapshot` record and applies each `diff`
//! that continues it, so a printed line is the publisher's book at that update id, and a lost
//! record makes the book wait for the next snapshot rather than print a wrong one.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;

use super::args;
use super::error::CmdError;
use crate::book::fixed::{push_u64, push_units};
use crate::output::{Output, OutputMode};
use crate::publish::ice::IceSubscriber;
use crate::publish::nats::NatsSubscriber;
use crate::publish::Target;
use crate::wire::replica::{self, Applied, Replica, ReplicaState};
use crate::wire::{self, Record, WireError};

/// The most symbols a subscriber follows; ids beyond are counted and ignored (a bus with more
/// is not a tickfeed publisher's).
pub(crate) const MAX_SUBSCRIBED_SYMBOLS: usize = 65_536;

/// `tickfeed subscribe`'s flags.
#[derive(Debug, Clone, Args)]
pub(crate) struct SubscribeArgs {
    /// iceoryx2 (shared memory on this host; iceoryx2:SERVICE for a --publish iceoryx2:SERVICE) | nats://HOST:PORT (binary records)
    #[arg(long, value_name = "BUS", value_parser = publish_target)]
    pub from: Target,
    /// Symbols to follow (repeatable, or a comma list) [default: every symbol on the bus]
    #[arg(long, value_name = "SYM", value_delimiter = ',', value_parser = args::symbol)]
    pub symbol: Vec<String>,
    /// spot | usdm: the publisher's venue (the NATS subjects' and iceoryx2 service's second part)
    #[arg(long, value_name = "VENUE", default_value = "spot", value_parser = ["spot", "usdm"])]
    pub venue: String,
    /// tob | tob-json | none (one line per change of a rebuilt book)
    #[arg(long, value_name = "MODE", default_value = "tob", value_parser = subscribe_output)]
    pub output: OutputMode,
    /// Print from the `top` records instead of from the rebuilt books
    #[arg(long)]
    pub tops: bool,
    /// Exit 0 after SECS of wall time [default: until SIGINT/SIGTERM]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = args::secs)]
    pub duration: Option<args::Secs>,
    /// Exit 0 after N book changes printed (or counted with --output none) [default: unbounded]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = args::number::<u64>)]
    pub max_events: Option<u64>,
    /// At exit write DIR/{SYMBOL}.json for every rebuilt book that is synced (the format of
    /// `run --dump-book`)
    #[arg(long, value_name = "DIR")]
    pub dump_book: Option<PathBuf>,
    /// At exit write the subscriber's counters as JSON
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// Spin on the bus instead of sleeping 100 µs when it is empty
    #[arg(long)]
    pub busy_poll: bool,
}

fn publish_target(s: &str) -> Result<Target, String> {
    Target::parse(s).map_err(|e| e.replacen("--publish", "--from", 1))
}

fn subscribe_output(s: &str) -> Result<OutputMode, String> {
    match OutputMode::from_str(s) {
        Ok(OutputMode::Ndjson) => {
            Err("ndjson needs the exchange's frames; the bus carries books: use tob or tob-json".into())
        }
        Ok(m) => Ok(m),
        Err(e) => Err(e.to_string()),
    }
}

enum Source {
    Ice(IceSubscriber),
    Nats(NatsSubscriber),
}

/// One followed symbol.
struct Followed {
    name: Option<String>,
    replica: Replica,
    printed: bool,
}

/// What the subscriber counted.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    records: u64,
    bad_records: u64,
    ignored_symbols: u64,
    book_changes: u64,
    lines: u64,
}

/// `tickfeed subscribe`.
pub(super) fn subscribe(a: &SubscribeArgs) -> Result<(), CmdError> {
    if let Some(dir) = &a.dump_book {
        super::exit_files::probe_dir(dir)
            .map_err(|e| CmdError::Subscribe(format!("--dump-book {}: cannot be written: {e}", dir.display())))?;
    }
    if let Some(f) = &a.stats {
        super::exit_files::probe_file(f)
            .map_err(|e| CmdError::Subscribe(format!("--stats {}: cannot be written: {e}", f.display())))?;
    }
    let stop = crate::net::signal::install()?;
    let mut src = match &a.from {
        Target::Iceoryx2 { service } => {
            let name = service.clone().unwrap_or_else(|| crate::publish::ice::service_name(&a.venue));
            Source::Ice(IceSubscriber::open(&name).map_err(CmdError::Subscribe)?)
        }
        Target::Nats { host, port } => {
            Source::Nats(NatsSubscriber::open(host, *port, &a.venue, &a.symbol).map_err(CmdError::Subscribe)?)
        }
    };
    let wanted: Vec<String> = a.symbol.iter().map(|s| s.to_ascii_uppercase()).collect();
    let deadline = a.duration.map(|d| Instant::now() + d.0);
    let mut syms: HashMap<u32, Followed> = HashMap::new();
    let mut c = Counters::default();
    let mut out = Output::new(a.output, 256 * 1024);
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let mut stdout_ok = true;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut told_json = false;
    'run: loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        buf.clear();
        match &mut src {
            Source::Ice(s) => {
                s.poll(|p| buf.extend_from_slice(p)).map_err(CmdError::Subscribe)?;
            }
            Source::Nats(s) => {
                s.poll(&mut buf);
            }
        }
        if buf.is_empty() {
            if !a.busy_poll {
                std::thread::sleep(Duration::from_micros(100));
            }
            continue;
        }
        let mut at = 0;
        while at < buf.len() {
            let (h, r) = match wire::decode(&buf[at..]) {
                Ok(x) => x,
                Err(WireError::UnknownKind { len, .. }) if len as usize >= wire::HEADER_LEN => {
                    c.bad_records += 1;
                    at += len as usize;
                    continue;
                }
                Err(e) => {
                    c.bad_records += 1;
                    if buf[at] == b'{' && !told_json {
                        told_json = true;
                        eprintln!("tickfeed: the bus carries JSON records (--publish-format json); subscribe reads binary ones");
                    } else if c.bad_records == 1 {
                        eprintln!("tickfeed: skipped a message that is not a record: {e}");
                    }
                    // The rest of this message cannot be framed.
                    break;
                }
            };
            at += h.len as usize;
            c.records += 1;
            if !syms.contains_key(&h.symbol) && syms.len() >= MAX_SUBSCRIBED_SYMBOLS {
                c.ignored_symbols += 1;
                continue;
            }
            let f = syms.entry(h.symbol).or_insert_with(|| Followed {
                name: None,
                replica: Replica::new(),
                printed: false,
            });
            if let Record::Symbol(s) = &r {
                f.name = Some(s.name.to_string());
                f.printed = wanted.is_empty() || wanted.iter().any(|w| w == s.name);
            }
            let applied = f.replica.on_record(&h, &r);
            if !f.printed {
                continue;
            }
            let Some(name) = f.name.as_deref() else { continue };
            let line = match (applied, a.tops, &r) {
                (Applied::Book, false, _) => {
                    c.book_changes += 1;
                    let rep = &f.replica;
                    rep.best().map(|(b, s)| (rep.update_id(), rep.tick(), b, s, recv_of(&r)))
                }
                (Applied::Top, true, Record::Top(t)) => {
                    c.book_changes += 1;
                    Some((t.update_id, t.tick, t.bid, t.ask, t.recv_ns))
                }
                _ => None,
            };
            if let Some((id, tick, bid, ask, recv_ns)) = line {
                if replica::print_top(&mut out, name, id, tick, bid, ask, recv_ns) {
                    c.lines += 1;
                }
            }
            if a.max_events.is_some_and(|m| c.book_changes >= m) {
                break 'run;
            }
        }
        if stdout_ok && out.flush_to(&mut stdout).is_err() {
            stdout_ok = false;
        }
        out.discard();
    }
    if stdout_ok {
        let _ = out.flush_to(&mut stdout);
        let _ = stdout.flush();
    }
    let (received, ring_lost) = match &src {
        Source::Nats(s) => s.received(),
        Source::Ice(_) => (c.records, 0),
    };
    drop(src);
    let mut names: Vec<(&str, &Followed)> =
        syms.values().filter_map(|f| Some((f.name.as_deref()?, f))).filter(|(_, f)| f.printed).collect();
    names.sort_by_key(|(n, _)| *n);
    if let Some(dir) = &a.dump_book {
        for (name, f) in &names {
            match f.replica.state() {
                ReplicaState::Synced { partial: false } => {
                    let path = dir.join(format!("{name}.json"));
                    std::fs::write(&path, replica_json(name, &f.replica))
                        .map_err(|e| CmdError::Subscribe(format!("--dump-book {}: {e}", path.display())))?;
                }
                state => eprintln!("tickfeed: {name} is not synced on the bus ({state:?}): no book dumped"),
            }
        }
    }
    let totals = names.iter().fold(crate::wire::replica::ReplicaCounters::default(), |mut t, (_, f)| {
        let r = f.replica.counters();
        t.lost += r.lost;
        t.behind += r.behind;
        t.snapshots += r.snapshots;
        t.diffs += r.diffs;
        t.drops += r.drops;
        t
    });
    if let Some(path) = &a.stats {
        let mut j = String::from("{");
        let keys = [
            ("records", c.records),
            ("messages", received),
            ("ring_dropped", ring_lost),
            ("bad_records", c.bad_records),
            ("ignored_symbols", c.ignored_symbols),
            ("book_changes", c.book_changes),
            ("lines", c.lines),
            ("lost", totals.lost),
            ("behind", totals.behind),
            ("snapshots", totals.snapshots),
            ("diffs", totals.diffs),
            ("drops", totals.drops),
        ];
        for (k, v) in keys {
            j.push_str(&format!("\"{k}\":{v},"));
        }
        j.push_str("\"symbols\":{");
        for (i, (name, f)) in names.iter().enumerate() {
            let r = &f.replica;
            let synced = matches!(r.state(), ReplicaState::Synced { .. });
            j.push_str(&format!(
                "{}\"{name}\":{{\"synced\":{synced},\"lastUpdateId\":{},\"bids\":{},\"asks\":{}}}",
                if i > 0 { "," } else { "" },
                r.update_id(),
                r.bids().count(),
                r.asks().count()
            ));
        }
        j.push_str("}}\n");
        std::fs::write(path, j).map_err(|e| CmdError::Subscribe(format!("--stats {}: {e}", path.display())))?;
    }
    eprintln!(
        "tickfeed subscribe: {} records, {} book changes, {} snapshots, {} diffs, {} lost, {} books dropped, {} bad",
        c.records, c.book_changes, totals.snapshots, totals.diffs, totals.lost, totals.drops, c.bad_records
    );
    Ok(())
}

/// The local receive time a record carries (for the printed line).
fn recv_of(r: &Record<'_>) -> i64 {
    match r {
        Record::Top(t) => t.recv_ns,
        Record::Diff(d) => d.recv_ns,
        Record::Trade(t) => t.recv_ns,
        Record::Snapshot(s) => s.recv_ns,
        Record::Status(s) => s.recv_ns,
        Record::Symbol(_) => 0,
    }
}

/// A rebuilt book in `run --dump-book`'s format.
pub(crate) fn replica_json(symbol: &str, r: &Replica) -> String {
    let tick = r.tick();
    let mut o: Vec<u8> = Vec::with_capacity(64 * 1024);
    o.extend_from_slice(b"{\"symbol\":\"");
    o.extend_from_slice(symbol.as_bytes());
    o.extend_from_slice(b"\",\"lastUpdateId\":");
    push_u64(&mut o, r.update_id());
    type Side<'a> = (&'a [u8], Vec<(i64, i64)>);
    let sides: [Side<'_>; 2] = [(b",\"bids\":[", r.bids().collect()), (b"],\"asks\":[", r.asks().collect())];
    for (key, levels) in sides {
        o.extend_from_slice(key);
        for (i, (p, q)) in levels.into_iter().enumerate() {
            if i > 0 {
                o.push(b',');
            }
            o.extend_from_slice(b"[\"");
            push_units(&mut o, p.saturating_mul(tick), 8);
            o.extend_from_slice(b"\",\"");
            push_units(&mut o, q, 8);
            o.extend_from_slice(b"\"]");
        }
    }
    o.extend_from_slice(b"]}\n");
    String::from_utf8_lossy(&o).into_owned()
}
