//! Run counters and latency histograms, and the `--stats` JSON / `--hist` files written at exit.
//!
//! Histograms are hdrhistogram with fixed bounds and no auto-resize, so recording never
//! allocates; values past the top bound are clamped (and counted) rather than lost.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Highest latency recorded exactly, in microseconds (one hour).
pub const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Highest in-process time recorded exactly, in nanoseconds (ten seconds).
pub const PROCESS_MAX_NS: u64 = 10_000_000_000;

/// Highest stage time recorded exactly, in nanoseconds (one second).
pub const STAGE_MAX_NS: u64 = 1_000_000_000;

/// One stage of the hot path, timed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The socket read syscall (per read).
    Read,
    /// TLS record processing and decryption (per read; 0 on plain `ws://`).
    Tls,
    /// Websocket frame decoding (per message).
    Ws,
    /// Envelope split and JSON decode into a typed event (per message).
    Json,
    /// Sequencing, the sync engine, the ladder and the bookTicker audit (per message).
    Book,
    /// Formatting output lines into the buffer (per message that writes one).
    Output,
}

impl Stage {
    /// Every stage, in path order.
    pub const ALL: [Stage; 6] = [Stage::Read, Stage::Tls, Stage::Ws, Stage::Json, Stage::Book, Stage::Output];

    /// The `--stats` key.
    pub fn key(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Tls => "tls",
            Stage::Ws => "websocket",
            Stage::Json => "json",
            Stage::Book => "book",
            Stage::Output => "output",
        }
    }
}

/// Where the in-process time goes: one histogram per [`Stage`], in nanoseconds. Empty unless a
/// stage clock is on (live runs: on; replay: with `--measure`).
#[derive(Debug, Clone)]
pub struct Stages([Histogram<u64>; 6]);

impl Stages {
    fn new() -> Stages {
        Stages(std::array::from_fn(|_| histogram(STAGE_MAX_NS)))
    }

    /// Records `ns` for `stage`.
    #[inline]
    pub fn record(&mut self, stage: Stage, ns: u64) {
        self.0[stage as usize].saturating_record(ns.max(1));
    }

    /// The histogram of `stage`.
    pub fn get(&self, stage: Stage) -> &Histogram<u64> {
        &self.0[stage as usize]
    }

    /// Whether nothing was timed.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Histogram::is_empty)
    }
}

/// Everything counted over a run. Field names match the `--stats` keys where the contract has one.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Market events processed (depth, trade, aggTrade, bookTicker).
    pub events: u64,
    /// Depth diffs.
    pub depth_updates: u64,
    /// Trades.
    pub trades: u64,
    /// Aggregate trades.
    pub agg_trades: u64,
    /// bookTicker messages.
    pub book_tickers: u64,
    /// Frames that could not be decoded or belong to no subscribed stream.
    pub bad_messages: u64,
    /// Websocket connections opened after the first.
    pub reconnects: u64,
    /// Pings received.
    pub pings: u64,
    /// Pongs sent.
    pub pongs: u64,
    /// Control replies (`{"result":..,"id":..}`) received.
    pub control_replies: u64,
    /// serverShutdown events received.
    pub server_shutdowns: u64,
    /// Events whose receive time was before their exchange time (clocks disagree).
    pub negative_latency: u64,
    /// The most negative latency seen, in microseconds (0 if none).
    pub min_latency_us: i64,
    /// Market events skipped because their id was already processed (second connection).
    pub duplicates: u64,
    /// Trade id discontinuities (a trade id that is not the previous + 1).
    pub trade_id_gaps: u64,
    /// SBE binary frames given to the pipeline (any template, good or bad).
    pub sbe_frames: u64,
    /// SBE `@depth20` messages processed.
    pub depth20: u64,
    /// `@depth20` messages compared with the book at their id.
    pub depth20_checks: u64,
    /// Those comparisons that differed (each one resyncs the book).
    pub depth20_mismatches: u64,
    /// Receive wall clock minus event time E, microseconds, for events with E and a
    /// non-negative difference.
    pub latency_us: Histogram<u64>,
    /// In-process time from bytes read to book updated and output written, nanoseconds.
    pub process_ns: Histogram<u64>,
    /// The same time, stage by stage.
    pub stages: Stages,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

fn histogram(max: u64) -> Histogram<u64> {
    // 3 significant digits, fixed range: recording never allocates. Bounds are constants that
    // hdrhistogram accepts, so this cannot fail.
    Histogram::new_with_bounds(1, max, 3).expect("valid histogram bounds")
}

impl Stats {
    /// Zeroed counters and empty histograms.
    pub fn new() -> Stats {
        Stats {
            events: 0,
            depth_updates: 0,
            trades: 0,
            agg_trades: 0,
            book_tickers: 0,
            bad_messages: 0,
            reconnects: 0,
            pings: 0,
            pongs: 0,
            control_replies: 0,
            server_shutdowns: 0,
            negative_latency: 0,
            min_latency_us: 0,
            trade_id_gaps: 0,
            sbe_frames: 0,
            depth20: 0,
            depth20_checks: 0,
            depth20_mismatches: 0,
            duplicates: 0,
            latency_us: histogram(LATENCY_MAX_US),
            process_ns: histogram(PROCESS_MAX_NS),
            stages: Stages::new(),
        }
    }

    /// Records one event's latency in microseconds; a negative one is counted, not recorded.
    #[inline]
    pub fn record_latency_us(&mut self, us: i64) {
        if us < 0 {
            self.negative_latency += 1;
            self.min_latency_us = self.min_latency_us.min(us);
        } else {
            self.latency_us.saturating_record(us as u64);
        }
    }

    /// Records one event's in-process time in nanoseconds.
    #[inline]
    pub fn record_process_ns(&mut self, ns: u64) {
        self.process_ns.saturating_record(ns);
    }
}

/// Per-symbol facts for the stats file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolSummary {
    /// Uppercase symbol.
    pub symbol: String,
    /// Sync state name.
    pub state: &'static str,
    /// True when synced.
    pub synced: bool,
    /// The book's update id.
    pub last_update_id: u64,
    /// Bid levels held.
    pub bids: usize,
    /// Ask levels held.
    pub asks: usize,
    /// Sequence gaps.
    pub gaps: u64,
    /// Snapshots after the first.
    pub resyncs: u64,
    /// Buffered diffs dropped at alignment.
    pub dropped_diffs: u64,
    /// Resyncs because a far level had to be dropped (a full overflow).
    pub evictions: u64,
    /// Resyncs because the best price moved past the snapshot's deepest level.
    pub beyond_snapshot: u64,
    /// Resyncs because the bookTicker audit disagreed with the book.
    pub audit_resyncs: u64,
    /// Snapshots discarded because they never connected to the stream.
    pub unconnected_snapshots: u64,
    /// Snapshots refused as too old for the buffered diffs (refetched).
    pub stale_snapshots: u64,
    /// Snapshots refused because they cannot be a real book (unordered, a price twice, crossed).
    pub malformed_snapshots: u64,
    /// Times the pre-snapshot buffer passed its bound and restarted.
    pub buffer_overflows: u64,
    /// Times the pre-snapshot buffer was dropped because its first diff kept being too old.
    pub buffer_restarts: u64,
    /// Books discarded because a price was off their tick size.
    pub off_tick: u64,
    /// bookTicker comparisons.
    pub book_ticker_checks: u64,
    /// bookTicker mismatches.
    pub book_ticker_mismatches: u64,
    /// bookTickers dropped unchecked because more than [`crate::book::PENDING_CAP`] waited for
    /// the book to reach their `u`.
    pub book_ticker_overflows: u64,
    /// Trades seen for the symbol.
    pub trades: u64,
    /// Milliseconds from the run's start to the book's first sync (`None`: never synced, or a
    /// run without a start, such as replay).
    pub synced_after_ms: Option<u64>,
}

fn hist_json(out: &mut String, h: &Histogram<u64>) {
    let q = |p: f64| if h.is_empty() { 0 } else { h.value_at_quantile(p) };
    let _ = write!(
        out,
        "{{\"count\":{},\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"max\":{}}}",
        h.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        if h.is_empty() { 0 } else { h.max() }
    );
}

/// The `--stats` JSON: the contract's keys, then tickfeed's own additions. Written once at exit.
/// `raw` are further keys whose values are JSON already (arrays, objects).
pub fn stats_json(s: &Stats, symbols: &[SymbolSummary], extra: &[(&str, u64)], raw: &[(&str, String)]) -> String {
    let mut o = String::with_capacity(1024);
    let sum = |f: fn(&SymbolSummary) -> u64| symbols.iter().map(f).sum::<u64>();
    let _ = write!(
        o,
        "{{\"events\":{},\"depth_updates\":{},\"trades\":{},\"agg_trades\":{},\"book_tickers\":{},\
         \"bad_messages\":{},\"resyncs\":{},\"gaps\":{},\"reconnects\":{},\"pings\":{},\"pongs\":{},\
         \"book_ticker_checks\":{},\"book_ticker_mismatches\":{},\"latency_us\":",
        s.events,
        s.depth_updates,
        s.trades,
        s.agg_trades,
        s.book_tickers,
        s.bad_messages,
        sum(|x| x.resyncs),
        sum(|x| x.gaps),
        s.reconnects,
        s.pings,
        s.pongs,
        sum(|x| x.book_ticker_checks),
        sum(|x| x.book_ticker_mismatches),
    );
    hist_json(&mut o, &s.latency_us);
    o.push_str(",\"process_ns\":");
    hist_json(&mut o, &s.process_ns);
    if !s.stages.is_empty() {
        o.push_str(",\"stages_ns\":{");
        for (i, st) in Stage::ALL.into_iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "\"{}\":", st.key());
            hist_json(&mut o, s.stages.get(st));
        }
        o.push('}');
    }
    let _ = write!(
        o,
        ",\"negative_latency\":{},\"min_latency_us\":{},\"control_replies\":{},\"server_shutdowns\":{},\
         \"trade_id_gaps\":{},\"duplicates\":{},\"dropped_diffs\":{},\"evictions\":{},\"beyond_snapshot\":{},\"audit_resyncs\":{},\"unconnected_snapshots\":{},\"book_ticker_overflows\":{},\
         \"stale_snapshots\":{},\"malformed_snapshots\":{},\"buffer_overflows\":{},\"buffer_restarts\":{},\"off_tick\":{},\
         \"sbe_frames\":{},\"depth20\":{},\"depth20_checks\":{},\"depth20_mismatches\":{}",
        s.negative_latency,
        s.min_latency_us,
        s.control_replies,
        s.server_shutdowns,
        s.trade_id_gaps,
        s.duplicates,
        sum(|x| x.dropped_diffs),
        sum(|x| x.evictions),
        sum(|x| x.beyond_snapshot),
        sum(|x| x.audit_resyncs),
        sum(|x| x.unconnected_snapshots),
        sum(|x| x.book_ticker_overflows),
        sum(|x| x.stale_snapshots),
        sum(|x| x.malformed_snapshots),
        sum(|x| x.buffer_overflows),
        sum(|x| x.buffer_restarts),
        sum(|x| x.off_tick),
        s.sbe_frames,
        s.depth20,
        s.depth20_checks,
        s.depth20_mismatches,
    );
    for (k, v) in extra {
        let _ = write!(o, ",\"{k}\":{v}");
    }
    for (k, v) in raw {
        let _ = write!(o, ",\"{k}\":{v}");
    }
    o.push_str(",\"symbols\":{");
    for (i, x) in symbols.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "\"{}\":{{\"synced\":{},\"state\":\"{}\",\"lastUpdateId\":{},\"bids\":{},\"asks\":{},\"gaps\":{},\
             \"resyncs\":{},\"dropped_diffs\":{},\"book_ticker_checks\":{},\"book_ticker_mismatches\":{},\"trades\":{}",
            x.symbol,
            x.synced,
            x.state,
            x.last_update_id,
            x.bids,
            x.asks,
            x.gaps,
            x.resyncs,
            x.dropped_diffs,
            x.book_ticker_checks,
            x.book_ticker_mismatches,
            x.trades
        );
        if let Some(ms) = x.synced_after_ms {
            let _ = write!(o, ",\"synced_after_ms\":{ms}");
        }
        o.push('}');
    }
    o.push_str("}}\n");
    o
}

/// A histogram in HdrHistogram's percentile-distribution text format (what HdrHistogram's
/// plotter and `hdr-plot` read), values scaled by `unit_ratio` (e.g. 1000.0 for us -> ms).
pub fn percentile_distribution(h: &Histogram<u64>, unit_ratio: f64) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    if !h.is_empty() {
        // TotalCount is cumulative, as in HdrHistogram's own output.
        let mut total = 0u64;
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let inv = if q < 1.0 { format!("{:14.2}", 1.0 / (1.0 - q)) } else { format!("{:>14}", "") };
            let _ = writeln!(
                o,
                "{:12.3} {:2.12} {:10} {}",
                v.value_iterated_to() as f64 / unit_ratio,
                q,
                total,
                inv.trim_end()
            );
        }
    }
    let mean = if h.is_empty() { 0.0 } else { h.mean() / unit_ratio };
    let sd = if h.is_empty() { 0.0 } else { h.stdev() / unit_ratio };
    let _ = writeln!(o, "#[Mean    = {mean:12.3}, StdDeviation   = {sd:12.3}]");
    let _ = writeln!(
        o,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        if h.is_empty() { 0.0 } else { h.max() as f64 / unit_ratio },
        h.len()
    );
    let _ = writeln!(o, "#[Buckets = {:12}, SubBuckets     = {:12}]", h.buckets(), h.distinct_values());
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_latency_is_counted_not_recorded() {
        let mut s = Stats::new();
        s.record_latency_us(-1_270_000);
        s.record_latency_us(1500);
        s.record_latency_us(i64::MAX);
        assert_eq!(s.negative_latency, 1);
        assert_eq!(s.min_latency_us, -1_270_000);
        assert_eq!(s.latency_us.len(), 2);
    }

    #[test]
    fn stats_json_has_contract_keys() {
        let mut s = Stats::new();
        s.events = 3;
        s.record_latency_us(100);
        s.record_process_ns(800);
        let sym = SymbolSummary {
            symbol: "BTCUSDT".into(),
            state: "synced",
            synced: true,
            last_update_id: 7,
            bids: 2,
            asks: 3,
            gaps: 1,
            resyncs: 1,
            dropped_diffs: 2,
            evictions: 0,
            beyond_snapshot: 0,
            audit_resyncs: 0,
            unconnected_snapshots: 0,
            book_ticker_checks: 5,
            book_ticker_mismatches: 0,
            book_ticker_overflows: 0,
            stale_snapshots: 0,
            malformed_snapshots: 0,
            buffer_overflows: 0,
            buffer_restarts: 0,
            off_tick: 0,
            trades: 9,
            synced_after_ms: Some(1234),
        };
        let sym_copy = sym.clone();
        let j = stats_json(&s, &[sym], &[("extra_key", 4)], &[("raw_key", "[1,2]".into())]);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        for k in [
            "events",
            "depth_updates",
            "trades",
            "agg_trades",
            "book_tickers",
            "bad_messages",
            "resyncs",
            "gaps",
            "reconnects",
            "pings",
            "pongs",
            "book_ticker_checks",
            "book_ticker_mismatches",
        ] {
            assert!(v[k].is_u64(), "{k}");
        }
        for h in ["latency_us", "process_ns"] {
            for k in ["count", "p50", "p90", "p99", "p999", "max"] {
                assert!(v[h][k].is_number(), "{h}.{k}");
            }
        }
        assert_eq!(v["latency_us"]["count"], 1);
        assert_eq!(v["symbols"]["BTCUSDT"]["synced"], true);
        assert_eq!(v["symbols"]["BTCUSDT"]["lastUpdateId"], 7);
        assert_eq!(v["symbols"]["BTCUSDT"]["bids"], 2);
        assert_eq!(v["symbols"]["BTCUSDT"]["synced_after_ms"], 1234);
        assert_eq!(v["gaps"], 1);
        assert_eq!(v["extra_key"], 4);
        assert_eq!(v["raw_key"][1], 2);
        let unsynced = SymbolSummary { symbol: "ETHUSDT".into(), synced_after_ms: None, ..sym_copy };
        let v: serde_json::Value = serde_json::from_str(&stats_json(&s, &[unsynced], &[], &[])).unwrap();
        assert!(v["symbols"]["ETHUSDT"].get("synced_after_ms").is_none(), "absent, not null, when unknown");
        let pd = percentile_distribution(&s.latency_us, 1000.0);
        assert!(pd.contains("Percentile") && pd.contains("#[Max"), "{pd}");
    }
}
