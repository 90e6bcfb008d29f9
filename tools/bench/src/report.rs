//! The results as a markdown table (one row per client x mode x rate, with ratios to the floor
//! client of the same mode and rate), a check against the targets, and the JSON file.
//!
//! Not here: running anything.

use std::fmt::Write as _;

use serde::Serialize;

use crate::harness::RunResult;

/// The JSON file's shape.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// The command line.
    pub command: Vec<String>,
    /// What the machine was doing.
    pub machine: Machine,
    /// The recording's files.
    pub recording: Vec<String>,
    /// `--secs`.
    pub secs: f64,
    /// Every run.
    pub runs: &'a [RunResult],
}

/// The machine the numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Online CPUs.
    pub cpus: usize,
    /// The first CPU's model name, from /proc/cpuinfo.
    pub cpu_model: String,
    /// /proc/loadavg before the first run.
    pub load_before: String,
    /// /proc/loadavg after the last run.
    pub load_after: String,
}

impl Machine {
    /// Reads what Linux tells; empty strings elsewhere.
    pub fn now() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            })
            .unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_model,
            load_before: loadavg(),
            load_after: String::new(),
        }
    }
}

/// The first three fields of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The floor row for `r`'s mode and rate.
fn floor_of<'a>(runs: &'a [RunResult], r: &RunResult) -> Option<&'a RunResult> {
    runs.iter().find(|f| f.client == "floor" && f.mode == r.mode && f.rate == r.rate)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// The markdown table.
pub fn table(runs: &[RunResult]) -> String {
    let mut o = String::new();
    o.push_str("| client | mode | rate | events | events/s | p50 | p90 | p99 | p99.9 | max | vs floor: events/s | p50 | p99 | p99.9 | notes |\n");
    o.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for r in runs {
        let l = &r.latency_us;
        let (re, r50, r99, r999) = match floor_of(runs, r) {
            Some(f) if r.client != "floor" => (
                ratio(r.events_per_s, f.events_per_s),
                ratio(l.p50 as f64, f.latency_us.p50 as f64),
                ratio(l.p99 as f64, f.latency_us.p99 as f64),
                ratio(l.p999 as f64, f.latency_us.p999 as f64),
            ),
            _ => ("".into(), "".into(), "".into(), "".into()),
        };
        let mut notes = r.notes.join("; ");
        if !r.ok {
            notes = format!("**not ok**: {notes}");
        }
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.client,
            r.mode,
            r.rate,
            r.events,
            r.events_per_s,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            re,
            r50,
            r99,
            r999,
            notes
        );
    }
    o.push_str("\nLatency in µs: the client's receive wall clock minus the simulator's `E`, stamped as it writes the frame (TLS, loopback, client).\n");
    o
}

/// The targets, per mode: at each fixed rate tickfeed's p50 and p99 within 1.1x of the
/// floor's and p99.9 within 1.5x; at max rate at least 80% of the floor's events/s.
pub fn targets(runs: &[RunResult]) -> String {
    let mut o = String::new();
    o.push_str("Targets (tickfeed against the floor, same mode and rate): fixed rates p50 and p99 <= 1.1x, p99.9 <= 1.5x; max rate events/s >= 0.8x.\n\n");
    for r in runs.iter().filter(|r| r.client == "tickfeed") {
        let Some(f) = floor_of(runs, r) else { continue };
        let line = if r.rate == "max" {
            let x = if f.events_per_s > 0.0 { r.events_per_s / f.events_per_s } else { 0.0 };
            format!("events/s {:.2}x {}", x, verdict(x >= 0.8))
        } else {
            let q = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { f64::INFINITY };
            let (a, b, c) = (
                q(r.latency_us.p50, f.latency_us.p50),
                q(r.latency_us.p99, f.latency_us.p99),
                q(r.latency_us.p999, f.latency_us.p999),
            );
            format!(
                "p50 {a:.2}x {}, p99 {b:.2}x {}, p99.9 {c:.2}x {}",
                verdict(a <= 1.1),
                verdict(b <= 1.1),
                verdict(c <= 1.5)
            )
        };
        let _ = writeln!(o, "- {} {}: {line}", r.mode, r.rate);
    }
    o
}

fn verdict(met: bool) -> &'static str {
    if met {
        "(met)"
    } else {
        "(NOT met)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Summary;

    fn row(client: &str, rate: &str, eps: f64, p: u64) -> RunResult {
        RunResult {
            client: client.into(),
            mode: "pinned-busy".into(),
            rate: rate.into(),
            events: 10,
            window_s: 1.0,
            events_per_s: eps,
            latency_us: Summary { count: 5, p50: p, p90: p, p99: p * 2, p999: p * 3, max: p * 4 },
            negative_latency: 0,
            ok: true,
            notes: vec![],
            exit_ms: None,
            sim_backlog_max: 0,
            tickfeed: None,
        }
    }

    #[test]
    fn ratios_are_to_the_floor_of_the_same_mode_and_rate() {
        let runs = vec![
            row("floor", "1000/s", 1000.0, 10),
            row("tickfeed", "1000/s", 1000.0, 12),
            row("floor", "max", 100.0, 1),
            row("tickfeed", "max", 90.0, 1),
        ];
        let t = table(&runs);
        assert!(t.contains("| tickfeed | pinned-busy | 1000/s | 10 | 1000 | 12 | 12 | 24 | 36 | 48 | 1.00x | 1.20x | 1.20x | 1.20x |"), "{t}");
        let g = targets(&runs);
        assert!(g.contains("pinned-busy 1000/s: p50 1.20x (NOT met)"), "{g}");
        assert!(g.contains("pinned-busy max: events/s 0.90x (met)"), "{g}");
    }
}
