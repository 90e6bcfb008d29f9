//! The flag groups more than one command takes, and the value parsers behind every flag.
//!
//! Each flag is declared once, on the field it fills, with its help line and its default; where
//! the library has a default (`LiveConfig`, `LadderConfig`, the REST weight budget) the field names
//! that constant instead of repeating its value, so `--help` shows what the code does. Values are
//! checked here, while clap parses, so a bad value is one line naming the flag before anything
//! starts. Not here: checks that need the machine or the network (`--core`, `--ca-file`, exit
//! files, unknown symbols), which the command drivers make at start.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;

use crate::binance::rest::DEFAULT_WEIGHT_PER_MINUTE;
use crate::binance::url::{self, SubscriptionError};
use crate::binance::StreamKind;
use crate::book::ladder::{LadderConfig, MAX_WINDOW_TICKS, MIN_WINDOW_TICKS};
use crate::live::{AllSymbols, LiveConfig};
use crate::output::OutputMode;
use crate::pipeline::PipelineConfig;
use crate::ws::Limits;

/// A value clap's parser refused. Its `Display` is the reason without the flag: the one-line
/// error puts the flag in front (`--depth-limit: 0 is outside 1..5000`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub(super) enum FlagError {
    /// Not a number of the flag's type.
    NotANumber(String),
    /// A number outside the flag's range.
    OutOfRange {
        /// The value as given.
        value: String,
        /// The range, as `--help` states it.
        range: String,
    },
    /// Not a finite number of seconds in 0..1e9.
    NotSeconds(String),
    /// `--max-conn-age` below its floor.
    ConnAgeTooShort,
    /// `--weight-budget` below the lightest request.
    WeightTooLow(u32),
    /// `--speed`: not a finite number above zero.
    NotPositive(String),
    /// `--pace`: neither `fast` nor `recorded`.
    UnknownPace(String),
    /// `--venue`: neither `spot` nor `usdm`.
    UnknownVenue(String),
    /// `--record-compress`: neither `gzip` nor `none`.
    UnknownCompression(String),
    /// `--depth-limit`: neither a number nor `auto`.
    NotDepthLimit(String),
    /// `--quote`: not an asset name.
    NotAnAsset(String),
}

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlagError::NotANumber(v) => write!(f, "'{v}' is not a valid number"),
            FlagError::OutOfRange { value, range } => write!(f, "{value} is outside {range}"),
            FlagError::NotSeconds(v) => write!(f, "{v} is not a number of seconds"),
            FlagError::ConnAgeTooShort => f.write_str("at least 0.1 s"),
            FlagError::WeightTooLow(w) => write!(f, "{w} is below the lightest request (5)"),
            FlagError::NotPositive(v) => write!(f, "'{v}' is not a positive number"),
            FlagError::UnknownPace(v) => write!(f, "unknown mode '{v}' (expected fast or recorded)"),
            FlagError::UnknownVenue(v) => write!(f, "unknown venue '{v}' (expected spot or usdm)"),
            FlagError::UnknownCompression(v) => write!(f, "'{v}' is not gzip or none"),
            FlagError::NotDepthLimit(v) => write!(f, "'{v}' is neither a number of levels nor auto"),
            FlagError::NotAnAsset(v) => write!(f, "'{v}' is not an asset name (letters and digits, e.g. USDT)"),
        }
    }
}

impl std::error::Error for FlagError {}

/// A number of seconds (fractions allowed), shown in `--help` as it is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Secs(pub Duration);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// Any number type, with the error naming the value.
pub(crate) fn number<T: FromStr>(s: &str) -> Result<T, FlagError> {
    s.parse().map_err(|_| FlagError::NotANumber(s.to_owned()))
}

fn in_range<T: FromStr + PartialOrd + std::fmt::Display>(s: &str, lo: T, hi: T) -> Result<T, FlagError> {
    let v: T = number(s)?;
    if v < lo || v > hi {
        return Err(FlagError::OutOfRange { value: v.to_string(), range: format!("{lo}..{hi}") });
    }
    Ok(v)
}

pub(crate) fn secs(s: &str) -> Result<Secs, FlagError> {
    let v: f64 = number(s)?;
    if v.is_finite() && (0.0..=1e9).contains(&v) {
        Ok(Secs(Duration::from_secs_f64(v)))
    } else {
        Err(FlagError::NotSeconds(v.to_string()))
    }
}

fn conn_age(s: &str) -> Result<Secs, FlagError> {
    let d = secs(s)?;
    if d.0 < Duration::from_millis(100) {
        return Err(FlagError::ConnAgeTooShort);
    }
    Ok(d)
}

/// `--depth-limit`: levels per side, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DepthLimit {
    /// The deepest limit that lets every book sync within `--sync-within` (chosen after exchangeInfo).
    Auto,
    /// This many levels per side.
    Levels(u32),
}

impl std::fmt::Display for DepthLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DepthLimit::Auto => f.write_str("auto"),
            DepthLimit::Levels(n) => write!(f, "{n}"),
        }
    }
}

fn depth_limit(s: &str) -> Result<DepthLimit, FlagError> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(DepthLimit::Auto);
    }
    if s.parse::<i64>().is_err() {
        return Err(FlagError::NotDepthLimit(s.to_owned()));
    }
    in_range(s, 1, 5000).map(DepthLimit::Levels)
}

/// `--quote`: an asset name, uppercased.
fn quote(s: &str) -> Result<String, FlagError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FlagError::NotAnAsset(s.to_owned()));
    }
    Ok(s.to_ascii_uppercase())
}

fn max_message(s: &str) -> Result<usize, FlagError> {
    in_range(s, 1024, 1 << 30)
}

fn streams_per_conn(s: &str) -> Result<usize, FlagError> {
    in_range(s, 1, LiveConfig::MAX_STREAMS_PER_CONN)
}

fn redundancy(s: &str) -> Result<usize, FlagError> {
    in_range(s, 1, LiveConfig::MAX_REDUNDANCY)
}

fn weight_budget(s: &str) -> Result<u32, FlagError> {
    let w: u32 = number(s)?;
    if w < 5 {
        return Err(FlagError::WeightTooLow(w));
    }
    Ok(w)
}

/// The ladder's own bounds: a window it would clamp is refused instead.
fn window_ticks(s: &str) -> Result<usize, FlagError> {
    in_range(s, MIN_WINDOW_TICKS, MAX_WINDOW_TICKS)
}

fn window_ticks_help() -> String {
    format!(
        "Ticks in each side's array window of the price ladder, {MIN_WINDOW_TICKS}..{MAX_WINDOW_TICKS} \
         (rounded up to a power of two), the same for every symbol [default: each book sized from its \
         first snapshot: 1024..65536 ticks by its price, tick and depth]"
    )
}

/// `--record-compress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordCompress {
    /// gzip each capture file when it closes.
    Gzip,
    /// Keep capture files plain.
    None,
}

impl std::fmt::Display for RecordCompress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordCompress::Gzip => "gzip",
            RecordCompress::None => "none",
        })
    }
}

fn record_compress(s: &str) -> Result<RecordCompress, FlagError> {
    match s {
        "gzip" => Ok(RecordCompress::Gzip),
        "none" => Ok(RecordCompress::None),
        _ => Err(FlagError::UnknownCompression(s.to_owned())),
    }
}

/// One `--symbol` item, checked (it goes into a URL and a stream name).
pub(crate) fn symbol(s: &str) -> Result<String, SubscriptionError> {
    url::check_symbol(s)?;
    Ok(s.to_owned())
}

/// `--pace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaceMode {
    /// As fast as possible.
    Fast,
    /// At the recorded times (divided by `--speed`).
    Recorded,
}

pub(crate) fn pace(s: &str) -> Result<PaceMode, FlagError> {
    match s {
        "fast" => Ok(PaceMode::Fast),
        "recorded" => Ok(PaceMode::Recorded),
        _ => Err(FlagError::UnknownPace(s.to_owned())),
    }
}

/// `--venue`.
pub(crate) fn venue(s: &str) -> Result<crate::venue::Venue, FlagError> {
    crate::venue::Venue::parse(s).ok_or_else(|| FlagError::UnknownVenue(s.to_owned()))
}

pub(crate) fn speed(s: &str) -> Result<f64, FlagError> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(FlagError::NotPositive(s.to_owned())),
    }
}

/// The output and exit-file flags `run`, `replay` and `demo` share.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub(crate) struct OutputArgs {
    /// tob | tob-json | ndjson | none
    #[arg(long, value_name = "MODE", default_value = "tob", value_parser = OutputMode::from_str)]
    pub output: OutputMode,
    /// At exit write DIR/{SYMBOL}.json with every level held (DIR is created, and checked, at start);
    /// SIGUSR1 writes them during a live run too
    #[arg(long, value_name = "DIR")]
    pub dump_book: Option<PathBuf>,
    /// At exit write the run summary as JSON (checked writable at start)
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// At exit write the latency histogram (HdrHistogram percentile format); FILE.process for in-process time
    #[arg(long, value_name = "FILE")]
    pub hist: Option<PathBuf>,
    /// Stop after N market events [default: unbounded]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = number::<u64>)]
    pub max_events: Option<u64>,
    // Its help is built from the ladder's bounds (window_ticks_help), so it has no doc comment.
    #[allow(missing_docs)]
    #[arg(long, value_name = "N", allow_negative_numbers = true, help = window_ticks_help(), value_parser = window_ticks)]
    pub window_ticks: Option<usize>,
    /// Keep a book synced when its best price moves past the deepest level of its snapshot (the plain official procedure; Binance: a book is authoritative only inside its snapshot's range). Default: resync then. For replaying a recording with one snapshot knowingly
    #[arg(long)]
    pub trust_beyond_snapshot: bool,
    /// Do not log sync events and bad messages to stderr
    #[arg(long, overrides_with = "quiet")]
    pub quiet: bool,
}

impl OutputArgs {
    /// Everything the pipeline takes from these flags.
    pub(crate) fn pipeline_config(&self) -> PipelineConfig {
        let mut cfg = PipelineConfig { output: self.output, ..PipelineConfig::default() };
        cfg.book.ladder = self.window_ticks.map(|w| LadderConfig { window_ticks: w, ..LadderConfig::default() });
        cfg.book.trust_beyond_snapshot = self.trust_beyond_snapshot;
        cfg
    }
}

/// The market and run flags `run` and `demo` share (`demo` supplies the connection itself).
#[derive(Debug, Clone, Args)]
pub(crate) struct FeedArgs {
    /// Symbols to follow, any case; repeat or give a comma list (one connection carries all). ALL:
    /// every TRADING symbol exchangeInfo lists (see --quote)
    #[arg(long, value_name = "SYM", value_delimiter = ',', default_value = "btcusdt", value_parser = symbol)]
    pub symbol: Vec<String>,
    /// With --symbol ALL: only the symbols quoted in this asset, e.g. USDT [default: every quote asset]
    #[arg(long, value_name = "Q", value_parser = quote)]
    pub quote: Option<String>,
    /// REST snapshot levels per side, 1..5000 (weight 5/25/50/250 of 6000 per minute), or auto: the
    /// deepest of 5000/1000/500/100 for which one snapshot of every book fits the weight available
    /// within --sync-within (the planned budget per minute x SECS/60, at least one minute's, less
    /// exchangeInfo's 20)
    #[arg(long, value_name = "N|auto", allow_negative_numbers = true, default_value_t = DepthLimit::Levels(LiveConfig::DEFAULT_DEPTH_LIMIT), value_parser = depth_limit)]
    pub depth_limit: DepthLimit,
    /// With --depth-limit auto: every book should have its first snapshot within SECS
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value_t = Secs(LiveConfig::DEFAULT_SYNC_WITHIN), value_parser = secs)]
    pub sync_within: Secs,
    /// Pin the event-loop thread to core N [default: not pinned]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = number::<usize>)]
    pub core: Option<usize>,
    /// Do not time the hot path's stages (read, TLS, websocket, JSON, book, output: the
    /// `stages_ns` of --stats; on by default, about 5 TSC reads and 6 histogram records a message)
    #[arg(long)]
    pub no_stage_times: bool,
    /// Stop after SECS of wall time (fractions allowed) [default: unbounded]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = secs)]
    pub duration: Option<Secs>,
    /// Capture frames and snapshots to DIR/{symbol}/{date}/take_N/{orderbook,trades,aggTrades,bookTickers}/
    /// (hourly files, gzipped when closed; tickfeed replay DIR reads them) [default: off]
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Compress each hourly capture file when it closes (on a background thread), or keep it plain
    #[arg(long, value_name = "gzip|none", default_value_t = RecordCompress::Gzip, value_parser = record_compress)]
    pub record_compress: RecordCompress,
    /// Reconnect when no market data arrives for SECS (0: never)
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value_t = Secs(LiveConfig::DEFAULT_STALE), value_parser = secs)]
    pub stale_secs: Secs,
    /// Open a new connection and switch to it (make before break) once a connection is SECS old
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value_t = Secs(LiveConfig::DEFAULT_MAX_CONN_AGE), value_parser = conn_age)]
    pub max_conn_age: Secs,
    /// Longest make-before-break overlap: switch even if the new connection has not caught up
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value_t = Secs(LiveConfig::DEFAULT_SWITCH_TIMEOUT), value_parser = secs)]
    pub switch_timeout: Secs,
    /// Largest websocket frame/message accepted; a larger one ends the connection (reconnect)
    #[arg(long, value_name = "BYTES", allow_negative_numbers = true, default_value_t = Limits::default().max_message, value_parser = max_message)]
    pub max_message: usize,
    /// REST request weight allowed per minute; snapshots that would exceed it wait. Snapshots are
    /// planned at 90% of the smaller of this and exchangeInfo's REQUEST_WEIGHT limit
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = DEFAULT_WEIGHT_PER_MINUTE, value_parser = weight_budget)]
    pub weight_budget: u32,
    /// Streams per websocket connection, 1..1024 (Binance's cap); the symbols are split over as many connections as needed, a symbol's streams always on one
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = LiveConfig::DEFAULT_STREAMS_PER_CONN, value_parser = streams_per_conn)]
    pub streams_per_conn: usize,
    /// Live connections per shard carrying the same streams, 1..4: each event is taken from whichever delivers it first, the copies are dropped by id, and a stall, reset or serverShutdown of one costs nothing while another is up. Connection i of a shard goes to the i-th --ws-url (round robin)
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 1, value_parser = redundancy)]
    pub redundancy: usize,
    /// With --redundancy: how long an event that runs ahead of its stream on one connection waits for another connection to deliver what is missing, before it is processed as a gap (and the book resyncs)
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value_t = Secs(LiveConfig::DEFAULT_REDUNDANCY_HOLD), value_parser = secs)]
    pub redundancy_hold: Secs,
    /// Which symbols `tob` prints book lines for (comma list). Default: every symbol when there are at most 20; with more, one summary line a second instead (`tob-json` prints every symbol)
    #[arg(long, value_name = "SYM,...", value_delimiter = ',', value_parser = symbol)]
    pub print: Vec<String>,
    /// Fan out books and trades as the records of docs/wire.md: iceoryx2 (zero-copy shared memory on this host, service tickfeed/<venue>/records) or nats://HOST:PORT (subjects tickfeed.<venue>.<SYMBOL>.<kind>) [default: off]
    #[arg(long, value_name = "iceoryx2|nats://HOST:PORT", value_parser = publish_target)]
    pub publish: Option<crate::publish::Target>,
    /// With --publish nats://: the payloads, binary records or one JSON object per record
    #[arg(long, value_name = "binary|json", default_value = "binary", value_parser = publish_format)]
    pub publish_format: crate::publish::Format,
    /// With --publish nats://: a snapshot record of every synced book this often, for subscribers that join late (iceoryx2 sends one when a subscriber joins)
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, default_value_t = Secs(Duration::from_secs(5)), value_parser = secs)]
    pub publish_snapshot_secs: Secs,
    /// Serve Prometheus / OpenMetrics text at http://ADDR/metrics from a helper thread [default: off]
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

fn publish_target(s: &str) -> Result<crate::publish::Target, String> {
    crate::publish::Target::parse(s)
}

pub(crate) fn publish_format(s: &str) -> Result<crate::publish::Format, String> {
    match s {
        "binary" => Ok(crate::publish::Format::Binary),
        "json" => Ok(crate::publish::Format::Json),
        _ => Err(format!("unknown publish format {s:?} (expected binary or json)")),
    }
}

impl FeedArgs {
    /// The symbols uppercased, duplicates removed, in the order given.
    pub(crate) fn symbols_upper(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(self.symbol.len());
        for s in &self.symbol {
            let up = s.to_ascii_uppercase();
            if !out.contains(&up) {
                out.push(up);
            }
        }
        out
    }

    /// `--symbol ALL` (alone), with its `--quote`; `None` for a list of symbols.
    pub(crate) fn all_symbols(&self) -> Result<Option<AllSymbols>, SelectionError> {
        let symbols = self.symbols_upper();
        let all = symbols.iter().any(|s| s == "ALL");
        if all && symbols.len() > 1 {
            return Err(SelectionError::AllWithOthers);
        }
        if !all && self.quote.is_some() {
            return Err(SelectionError::QuoteWithoutAll);
        }
        Ok(all.then(|| AllSymbols { quote: self.quote.clone() }))
    }

    /// Fills every field these flags own in `cfg` (and the stop conditions from `out`).
    pub(crate) fn apply(
        &self,
        cfg: &mut LiveConfig,
        streams: &[StreamKind],
        out: &OutputArgs,
    ) -> Result<(), SelectionError> {
        cfg.all_symbols = self.all_symbols()?;
        // With ALL the list comes from exchangeInfo (live::resolve).
        cfg.symbols = if cfg.all_symbols.is_some() { Vec::new() } else { self.symbols_upper() };
        let mut kinds = Vec::with_capacity(streams.len());
        for k in streams {
            if !kinds.contains(k) {
                kinds.push(*k);
            }
        }
        cfg.streams = kinds;
        (cfg.depth_limit, cfg.depth_auto) = match self.depth_limit {
            DepthLimit::Levels(n) => (n, false),
            DepthLimit::Auto => (LiveConfig::DEFAULT_DEPTH_LIMIT, true),
        };
        cfg.sync_within = self.sync_within.0;
        cfg.core = self.core;
        cfg.stage_times = !self.no_stage_times;
        cfg.max_events = out.max_events;
        cfg.duration = self.duration.map(|s| s.0);
        cfg.stale = self.stale_secs.0;
        cfg.max_conn_age = self.max_conn_age.0;
        cfg.switch_timeout = self.switch_timeout.0;
        cfg.limits = Limits { max_frame: self.max_message, max_message: self.max_message };
        cfg.weight_per_minute = self.weight_budget;
        cfg.streams_per_conn = self.streams_per_conn;
        cfg.redundancy = self.redundancy;
        cfg.redundancy_hold = self.redundancy_hold.0;
        cfg.print = (!self.print.is_empty()).then(|| self.print.iter().map(|s| s.to_ascii_uppercase()).collect());
        cfg.record = self.record.clone();
        cfg.publish = self.publish.clone().map(|t| {
            let mut p = crate::publish::PublishConfig::new(t);
            p.format = self.publish_format;
            p.snapshot_every = self.publish_snapshot_secs.0.max(Duration::from_millis(100));
            p
        });
        cfg.metrics = self.metrics.clone();
        cfg.dump_dir = out.dump_book.clone();
        cfg.record_compress = self.record_compress == RecordCompress::Gzip;
        Ok(())
    }
}

/// A symbol selection that contradicts itself: a configuration error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum SelectionError {
    /// `--symbol ALL` with other symbols.
    AllWithOthers,
    /// `--quote` without `--symbol ALL`.
    QuoteWithoutAll,
    /// `demo --symbol ALL`: the simulator makes the markets it is told to.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))] // demo exists only with the simulator
    AllInDemo,
}

impl std::fmt::Display for SelectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SelectionError::AllWithOthers => "--symbol ALL means every symbol: give it alone, not in a list",
            SelectionError::QuoteWithoutAll => "--quote narrows --symbol ALL: give --symbol ALL with it",
            SelectionError::AllInDemo => {
                "demo: --symbol ALL needs an exchange's symbol list; name the markets to simulate (e.g. --symbol \
                 btcusdt,ethusdt)"
            }
        })
    }
}

impl std::error::Error for SelectionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_errors_read_as_they_did() {
        assert_eq!(depth_limit("0").unwrap_err().to_string(), "0 is outside 1..5000");
        assert_eq!(depth_limit("x").unwrap_err().to_string(), "'x' is neither a number of levels nor auto");
        assert_eq!((depth_limit("auto"), depth_limit("AUTO")), (Ok(DepthLimit::Auto), Ok(DepthLimit::Auto)));
        assert_eq!(depth_limit("5000"), Ok(DepthLimit::Levels(5000)));
        assert_eq!(quote("usdt"), Ok("USDT".to_string()));
        assert_eq!(
            quote("US-D").unwrap_err().to_string(),
            "'US-D' is not an asset name (letters and digits, e.g. USDT)"
        );
        assert_eq!(number::<u64>("x").unwrap_err().to_string(), "'x' is not a valid number");
        assert_eq!(secs("-1").unwrap_err().to_string(), "-1 is not a number of seconds");
        assert_eq!(secs("inf").unwrap_err().to_string(), "inf is not a number of seconds");
        assert_eq!(conn_age("0.05").unwrap_err(), FlagError::ConnAgeTooShort);
        assert_eq!(max_message("100").unwrap_err().to_string(), "100 is outside 1024..1073741824");
        assert_eq!(weight_budget("4").unwrap_err().to_string(), "4 is below the lightest request (5)");
        assert_eq!(record_compress("zip").unwrap_err().to_string(), "'zip' is not gzip or none");
        assert_eq!(speed("0").unwrap_err().to_string(), "'0' is not a positive number");
        assert_eq!(pace("slow").unwrap_err().to_string(), "unknown mode 'slow' (expected fast or recorded)");
        assert_eq!(secs("1.5").unwrap(), Secs(Duration::from_millis(1500)));
        assert_eq!(Secs(LiveConfig::DEFAULT_MAX_CONN_AGE).to_string(), "84600");
    }

    #[test]
    fn window_ticks_is_bounded_as_the_ladder_is() {
        assert_eq!(window_ticks(&MIN_WINDOW_TICKS.to_string()), Ok(MIN_WINDOW_TICKS));
        assert_eq!(window_ticks(&MAX_WINDOW_TICKS.to_string()), Ok(MAX_WINDOW_TICKS));
        assert!(window_ticks(&(MIN_WINDOW_TICKS - 1).to_string()).is_err());
        let e = window_ticks(&(MAX_WINDOW_TICKS + 1).to_string()).unwrap_err().to_string();
        assert_eq!(e, format!("{} is outside {MIN_WINDOW_TICKS}..{MAX_WINDOW_TICKS}", MAX_WINDOW_TICKS + 1));
        assert!(window_ticks_help().contains(&format!("{MIN_WINDOW_TICKS}..{MAX_WINDOW_TICKS}")));
    }
}
