//! The one error the command drivers return, and the one-line form of clap's parse errors.
//!
//! Every layer's configuration error (URL, TLS file, core, signal handler, exit file, live run)
//! folds into [`CmdError`]; `main` prints it as `tickfeed: <reason>` on one line and exits with
//! [`CmdError::exit_code`]. A mistake on the command line never gets that far: clap reports it and
//! [`usage_line`] turns clap's several-line report into one line in the same style.

use std::io;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::args::SelectionError;
use super::exit_files::ExitFileError;
use crate::binance::url::{SubscriptionError, UrlError};
use crate::capture::ReadError;
use crate::live::{CoreError, LiveError};
use crate::net::signal::SignalError;
use crate::net::tls::TlsConfigError;

/// Why a command could not run or finish. Each variant is final for this run: the drivers retry
/// what can be retried (disconnects, gaps, HTTP 429/5xx) before ever returning one.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum CmdError {
    /// `--ws-url` / `--rest-url` (or the simulator's own address, for `demo`).
    Url(UrlError),
    /// `--symbol` / `--streams`.
    Subscription(SubscriptionError),
    /// `--symbol ALL` / `--quote` given in a way that contradicts itself.
    Selection(SelectionError),
    /// `--ca-file`.
    Tls(TlsConfigError),
    /// `--core`.
    Core(CoreError),
    /// The SIGINT/SIGTERM handler.
    Signal(SignalError),
    /// `--dump-book`, `--stats`, `--hist`: not writable at start, or failed at exit.
    ExitFile(ExitFileError),
    /// `replay --pace fast --speed X`: the two contradict each other.
    SpeedWithFastPace,
    /// `run --venue usdm --depth-limit N` with N above 1000, USDⓈ-M futures' deepest snapshot.
    FuturesDepthLimit(u32),
    /// `replay`: a path that does not exist.
    NoSuchRecording(PathBuf),
    /// `replay`: reading the recordings failed (no recording in a folder, an unreadable file, a
    /// file that is not a recording).
    Replay(ReadError),
    /// The live run stopped on an error retrying cannot mend (an unknown symbol, the poller).
    Live(LiveError),
    /// `demo`: the simulator could not start.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))] // demo exists only with the simulator
    SimStart(io::Error),
    /// `demo`: the simulator runs without TLS, so there is no certificate to trust.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))] // demo exists only with the simulator
    SimNoCertificate,
    /// `demo`: the simulator's certificate could not be written for the handler to trust.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))] // demo exists only with the simulator
    DemoCaFile {
        /// Where it was to be written.
        path: PathBuf,
        /// Why it could not be.
        source: io::Error,
    },
    /// `subscribe`: the bus could not be opened, or an exit file not written (the line says which).
    Subscribe(String),
    /// `--feed sbe`: no usable API key, or `--streams` names a stream the feed does not have.
    Feed(String),
    /// `demo` or `sim` in a build without the `sim` feature.
    #[cfg_attr(feature = "sim", allow(dead_code))] // made only where the simulator is left out
    NoSimulator(&'static str),
}

impl CmdError {
    /// The process exit status for this error: 2 for all of them (a configuration error, or a
    /// failure retrying cannot mend: see the command-line contract's exit status).
    pub(crate) fn exit_code(&self) -> u8 {
        2
    }
}

impl std::fmt::Display for CmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CmdError::Url(e) => e.fmt(f),
            CmdError::Subscription(e) => e.fmt(f),
            CmdError::Selection(e) => e.fmt(f),
            CmdError::Tls(e) => e.fmt(f),
            CmdError::Core(e) => e.fmt(f),
            CmdError::Signal(e) => e.fmt(f),
            CmdError::ExitFile(e) => e.fmt(f),
            CmdError::FuturesDepthLimit(n) => write!(
                f,
                "--depth-limit {n}: USDⓈ-M futures snapshots take at most 1000 levels (limits 5, 10, 20, 50, 100, 500, 1000)"
            ),
            CmdError::SpeedWithFastPace => f.write_str("--speed needs --pace recorded (it was given --pace fast)"),
            CmdError::NoSuchRecording(p) => write!(f, "replay: {}: no such file or folder", p.display()),
            CmdError::Replay(e) => write!(f, "replay: {e}"),
            CmdError::Live(e) => e.fmt(f),
            CmdError::Feed(e) => f.write_str(e),
            CmdError::SimStart(e) => write!(f, "demo: cannot start the simulator: {e}"),
            CmdError::SimNoCertificate => f.write_str("demo: the simulator has no certificate"),
            CmdError::DemoCaFile { path, source } => write!(f, "demo: cannot write {}: {source}", path.display()),
            CmdError::Subscribe(e) => write!(f, "subscribe: {e}"),
            CmdError::NoSimulator(cmd) => write!(
                f,
                "{cmd}: this build of tickfeed has no simulator (built without the `sim` feature; \
                 rebuild with default features)"
            ),
        }
    }
}

impl std::error::Error for CmdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CmdError::Url(e) => Some(e),
            CmdError::Subscription(e) => Some(e),
            CmdError::Selection(e) => Some(e),
            CmdError::Tls(e) => Some(e),
            CmdError::Core(e) => Some(e),
            CmdError::Signal(e) => Some(e),
            CmdError::ExitFile(e) => Some(e),
            CmdError::Replay(e) => Some(e),
            CmdError::SimStart(e) | CmdError::DemoCaFile { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

macro_rules! from_layer {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for CmdError {
            fn from(e: $ty) -> Self {
                CmdError::$variant(e)
            }
        })*
    };
}

from_layer!(
    Url(UrlError),
    Subscription(SubscriptionError),
    Selection(SelectionError),
    Tls(TlsConfigError),
    Core(CoreError),
    Signal(SignalError),
    ExitFile(ExitFileError),
    Live(LiveError),
);

fn text(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        ContextValue::StyledStrs(v) => Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
        ContextValue::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `--depth-limit <N>` -> `--depth-limit`.
fn flag_name(arg: &str) -> &str {
    arg.split_whitespace().next().unwrap_or(arg)
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(v: &[String]) -> String {
    match v {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// One line for a clap parse error (help and version requests excepted: print those as clap
/// renders them). `cmd` is the subcommand the arguments were for (`run`, `replay`...), if any:
/// the line names it and points at its `--help`, as tickfeed's own errors always have.
pub(crate) fn usage_line(err: &clap::Error, cmd: Option<&str>) -> String {
    let prefix = cmd.map(|c| format!("{c}: ")).unwrap_or_default();
    let see = match cmd {
        Some(c) => format!(" (see tickfeed {c} --help)"),
        None => " (see tickfeed --help)".to_owned(),
    };
    let arg = text(err, ContextKind::InvalidArg).unwrap_or_default();
    let value = text(err, ContextKind::InvalidValue).unwrap_or_default();
    let suggestion = match (text(err, ContextKind::SuggestedArg), text(err, ContextKind::SuggestedSubcommand)) {
        (Some(s), _) | (None, Some(s)) => format!(", did you mean {s}?"),
        _ => String::new(),
    };
    match err.kind() {
        ErrorKind::UnknownArgument if arg.starts_with('-') => format!("{prefix}unknown flag {arg}{suggestion}{see}"),
        ErrorKind::UnknownArgument => format!("{prefix}unexpected argument '{arg}'{suggestion}{see}"),
        ErrorKind::InvalidSubcommand => {
            use clap::CommandFactory;
            let cli = super::Cli::command();
            let names: Vec<String> =
                cli.get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_owned()).collect();
            let bad = text(err, ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("{prefix}unknown command '{bad}'{suggestion} (expected {})", or_list(&names))
        }
        ErrorKind::InvalidValue if value.is_empty() => {
            let placeholder = arg.split_whitespace().nth(1).unwrap_or("").trim_matches(['<', '>']);
            format!("{prefix}{} needs a value ({placeholder})", flag_name(&arg))
        }
        ErrorKind::InvalidValue => {
            let valid = match err.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(v)) => format!(" (expected {})", or_list(v)),
                _ => String::new(),
            };
            format!("{}: invalid value '{value}'{valid}", flag_name(&arg))
        }
        ErrorKind::ValueValidation => {
            let reason = std::error::Error::source(err)
                .map(|e| e.to_string())
                .unwrap_or_else(|| format!("invalid value '{value}'"));
            // Layer errors (URLs, symbols, streams) name their flag themselves.
            if reason.starts_with("--") {
                reason
            } else {
                format!("{}: {reason}", flag_name(&arg))
            }
        }
        ErrorKind::TooManyValues if !arg.contains(' ') => format!("{prefix}{} takes no value", flag_name(&arg)),
        ErrorKind::ArgumentConflict if text(err, ContextKind::PriorArg).as_deref() == Some(arg.as_str()) => {
            format!("{prefix}{} given twice", flag_name(&arg))
        }
        ErrorKind::ArgumentConflict => {
            let prior = text(err, ContextKind::PriorArg).unwrap_or_default();
            format!("{prefix}{} cannot be used with {}", flag_name(&arg), flag_name(&prior))
        }
        ErrorKind::MissingRequiredArgument => format!("{prefix}missing {arg}{see}"),
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            format!("{prefix}a command is needed{see}")
        }
        _ => {
            // Anything else: clap's own first line, without its "error: " label.
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or("").trim();
            format!("{prefix}{}{see}", first.strip_prefix("error: ").unwrap_or(first))
        }
    }
}
