//! The human summary a command prints on stderr when it ends (unless `--quiet`).
//!
//! For people, not scripts: its wording may change. Scripts read `--stats` (the contract's keys).

use crate::pipeline::Pipeline;

/// A human summary of a run for stderr.
pub(super) fn summary_text(p: &Pipeline) -> String {
    let s = p.stats();
    let mut o = format!(
        "events {} (depth {}, trades {}, aggTrades {}, bookTickers {}), bad messages {}\n",
        s.events, s.depth_updates, s.trades, s.agg_trades, s.book_tickers, s.bad_messages
    );
    if s.sbe_frames > 0 {
        o.push_str(&format!(
            "SBE frames {}, depth20 {} (checks {}, mismatches {})\n",
            s.sbe_frames, s.depth20, s.depth20_checks, s.depth20_mismatches
        ));
    }
    if !s.latency_us.is_empty() {
        o.push_str(&hist_line("latency_us", &s.latency_us));
    }
    if s.negative_latency > 0 {
        o.push_str(&format!(
            "negative latency: {} events (receive clock behind exchange by up to {} us)\n",
            s.negative_latency,
            s.min_latency_us.saturating_neg()
        ));
    }
    if !s.process_ns.is_empty() {
        o.push_str(&hist_line("process_ns", &s.process_ns));
    }
    for x in p.summaries() {
        o.push_str(&format!(
            "{} {} lastUpdateId {} bids {} asks {} gaps {} resyncs {} dropped {} bookTicker checks {} mismatches {} trades {}\n",
            x.symbol,
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
        ));
    }
    o
}

/// `name p50 .. p99 .. p999 .. max .. (n=..)` for a histogram that is not empty.
fn hist_line(name: &str, h: &hdrhistogram::Histogram<u64>) -> String {
    let q = |p: f64| h.value_at_quantile(p);
    format!("{name} p50 {} p99 {} p999 {} max {} (n={})\n", q(0.5), q(0.99), q(0.999), h.max(), h.len())
}
