//! `tickfeed replay FILE_OR_DIR...`: recordings through the live pipeline, and its flags.
//!
//! Files are read in the order given; a `--record` folder is walked and each recorded run in it
//! merged by receive time (see [`crate::capture::replay`]). The exit files and `--stats` keys are
//! `run`'s, plus the replay's line counts.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::args::{self, OutputArgs, PaceMode};
use super::error::CmdError;
use super::{exit_files, summary};
use crate::capture::{Pace, ReplayOptions, Replayer};
use crate::notice::NoticeLog;
use crate::pipeline::Pipeline;

/// `tickfeed replay`'s flags.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReplayArgs {
    /// Recordings: files (`<recv ns> <raw json>` lines, plain or gzip) or `--record` folders
    #[arg(value_name = "FILE_OR_DIR", required = true)]
    pub paths: Vec<PathBuf>,
    /// Replay only these symbols (others are counted as bad messages) [default: every symbol seen]
    #[arg(long, value_name = "SYM", value_delimiter = ',', value_parser = args::symbol)]
    pub symbol: Vec<String>,
    /// Time each frame into process_ns (two clock reads per line; off by default, so a replay reads
    /// no clock)
    #[arg(long, overrides_with_all = ["measure", "no_measure"])]
    pub measure: bool,
    /// Do not time each frame (the default; kept for scripts that pass it)
    #[arg(long, overrides_with_all = ["measure", "no_measure"])]
    pub no_measure: bool,
    /// fast (as fast as possible) | recorded (wait for each line's recorded time) [default: fast]
    #[arg(long, value_name = "MODE", value_parser = args::pace)]
    pub pace: Option<PaceMode>,
    /// With --pace recorded: play X times faster than recorded (implies --pace recorded) [default: 1]
    #[arg(long, value_name = "X", allow_negative_numbers = true, value_parser = args::speed)]
    pub speed: Option<f64>,
    /// spot | usdm: the market the recordings are of. usdm replays USDⓈ-M futures recordings
    /// (hftbacktest's futures collector: @depth@0ms, @depth, @trade, @bookTicker, /fapi/v1/depth
    /// snapshots) with the futures procedure (pu); a spot recording under usdm is bad messages
    /// [default: spot]
    #[arg(long, value_name = "VENUE", default_value = "spot", value_parser = args::venue)]
    pub venue: crate::venue::Venue,
    /// Publish the replayed books and trades, as `run --publish` does: iceoryx2[:SERVICE] or
    /// nats://HOST:PORT (with --pace recorded for a bus that cannot take a file's speed: a full
    /// NATS ring drops whole batches, counted) [default: off]
    #[arg(long, value_name = "iceoryx2|nats://HOST:PORT", value_parser = crate::publish::Target::parse)]
    pub publish: Option<crate::publish::Target>,
    /// With --publish nats://: binary records or one JSON object per record
    #[arg(long, value_name = "binary|json", default_value = "binary", value_parser = args::publish_format)]
    pub publish_format: crate::publish::Format,
    /// The output flags every command shares.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ReplayArgs {
    /// The replay pace from `--pace` and `--speed`.
    pub(crate) fn pace(&self) -> Result<Pace, CmdError> {
        match (self.pace, self.speed) {
            (None | Some(PaceMode::Fast), None) => Ok(Pace::AsFastAsPossible),
            (Some(PaceMode::Fast), Some(_)) => Err(CmdError::SpeedWithFastPace),
            (None | Some(PaceMode::Recorded), speed) => Ok(Pace::Recorded { speed: speed.unwrap_or(1.0) }),
        }
    }
}

/// `tickfeed replay`.
pub(super) fn replay(a: &ReplayArgs) -> Result<(), CmdError> {
    let pace = a.pace()?;
    if let Some(missing) = a.paths.iter().find(|p| !p.exists()) {
        return Err(CmdError::NoSuchRecording(missing.clone()));
    }
    exit_files::check_writable(&a.output)?;
    let mut cfg = a.output.pipeline_config();
    cfg.auto_symbols = a.symbol.is_empty();
    cfg.venue = a.venue;
    let syms: Vec<&str> = a.symbol.iter().map(String::as_str).collect();
    let mut p = Pipeline::new(cfg, &syms);
    let mut publisher = match &a.publish {
        Some(t) => {
            let mut pc = crate::publish::PublishConfig::new(t.clone());
            pc.format = a.publish_format;
            pc.venue = a.venue.as_str();
            let pb = crate::publish::Publisher::open(&pc).map_err(CmdError::Feed)?;
            let venue = u8::from(a.venue == crate::venue::Venue::UsdM);
            let tap = crate::wire::tap::TapConfig { venue, ..Default::default() };
            p.set_tap(Some(crate::wire::tap::Tap::new(tap, 1 << 20)));
            Some(pb)
        }
        None => None,
    };
    let wall = crate::net::clock::WallClock::new();
    // SIGINT/SIGTERM end the replay like the end of its input: summary and exit files written.
    let stop = crate::net::signal::install()?;
    let opts =
        ReplayOptions { max_events: a.output.max_events, measure: a.measure && !a.no_measure, pace, stop: Some(stop) };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut stdout_ok = true;
    let mut log = NoticeLog::stderr(a.output.quiet);
    let mut flush = |p: &mut Pipeline| {
        if !p.notices().is_empty() {
            log.drain(p.notices(), Instant::now());
        }
        if stdout_ok && p.output().flush_to(&mut out).is_err() {
            // stdout closed (a pipe into `head`): stop producing output, finish quietly.
            stdout_ok = false;
        }
        p.output().discard();
        if let Some(pb) = publisher.as_mut() {
            let now = wall.ns(Instant::now());
            if pb.wants_snapshots(now) {
                p.publish_snapshots(now);
            }
            if let Some(tap) = p.tap_mut() {
                if !tap.pending().is_empty() {
                    pb.send_counted(tap.pending(), tap.pending_records());
                    tap.clear();
                }
            }
        }
        stdout_ok
    };
    // A damaged file (a truncated gzip, say) ends the replay with its one-line error and a
    // non-zero exit, but after the exit files: what was replayed up to there is kept.
    let (counters, result) = {
        let mut r = Replayer::new(&mut p);
        let result = r.run(&a.paths, opts, &mut flush).map_err(CmdError::Replay);
        (r.counters(), result)
    };
    let _ = out.flush();
    drop(out);
    let published = publisher.take().map(|pb| pb.close(std::time::Duration::from_secs(2)));
    let mut extra = vec![
        ("lines", counters.lines),
        ("malformed_lines", counters.malformed_lines),
        ("bad_base64_lines", counters.bad_base64_lines),
        ("torn_lines", counters.torn_lines),
        ("snapshots", counters.snapshots),
        ("unattributed_snapshots", counters.unattributed_snapshots),
        ("runs", counters.runs),
        ("long_lines", counters.long_lines),
    ];
    if let Some(c) = published {
        extra.extend([
            ("publish_records", c.records),
            ("publish_bytes", c.bytes),
            ("publish_dropped", c.dropped),
            ("publish_sent", c.sent),
            ("publish_connects", c.connects),
            ("publish_errors", c.errors),
            ("publish_snapshot_rounds", c.snapshot_rounds),
        ]);
    }
    // A failure before any line (no such recording in a folder) is a one-line error and nothing
    // else; one part-way (a damaged file) keeps what was replayed in the exit files, and its
    // error is still the one line on stderr (no summary).
    if result.is_ok() || counters.lines > 0 {
        exit_files::write(&a.output, &p, &extra, &[])?;
    }
    if result.is_ok() && !a.output.quiet {
        eprint!("{}", summary::summary_text(&p));
        eprintln!("{}", counters.stamps_text());
    }
    result
}
