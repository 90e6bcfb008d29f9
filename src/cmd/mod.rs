//! The command line (clap, derive) and the command drivers: the only code that prints.
//!
//! `Cli` and `Command` are the commands of the command-line contract; each command's flags
//! live beside its driver (`run`, `replay`, `demo`) and the groups they share in `args`.
//! The contract's flags and `--stats` keys are the outside face of tickfeed: they are extended
//! here, never renamed. A mistake on the command line is one line on stderr and exit 2
//! (`usage_line`); `--help` and `--version` print to stdout and exit 0; a driver's error is a
//! `CmdError`, printed by `main` as one line. Not here: any decision about connections or
//! books (see [`crate::live`], [`crate::pipeline`]).

mod args;
#[cfg(feature = "sim")]
mod demo;
mod error;
mod exit_files;
mod replay;
mod run;
mod subscribe;
mod summary;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};

pub(crate) use error::{usage_line, CmdError};
pub(crate) use replay::ReplayArgs;
pub(crate) use run::RunArgs;
#[cfg(test)]
pub(crate) use subscribe::MAX_SUBSCRIBED_SYMBOLS;

/// `tickfeed`: the command line.
#[derive(Debug, Parser)]
#[command(
    name = "tickfeed",
    version,
    about = "tickfeed: a low-latency Binance spot market-data feed handler",
    after_help = "Run `tickfeed <COMMAND> --help` for a command's options.",
    subcommand_required = true,
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Live feed handler (default venue: Binance spot)
    ///
    /// Binance spot combined streams over one websocket, REST snapshots, local books kept in sync,
    /// top of book out. Ends on --duration, --max-events, SIGINT or SIGTERM: summary on stderr,
    /// exit files written, exit 0. Network failures are logged in one line and retried with
    /// backoff; configuration errors (bad URL, unknown symbol, unreadable CA file) exit 2. A closed
    /// stdout stops the output, not the run.
    Run(RunArgs),
    /// The same pipeline, fed from recordings instead of a socket
    ///
    /// Replay recordings (`<recv ns> <raw json>` lines, plain or gzip) through the live pipeline.
    /// Files are read in the order given. A folder (a `--record` capture: DIR, DIR/{symbol},
    /// DIR/{symbol}/{date} or a take) is walked and each recorded run in it is merged by receive
    /// time; the books are reset between runs.
    Replay(ReplayArgs),
    /// The built-in Binance exchange simulator (websocket + REST, TLS or plain)
    ///
    /// On start it prints one line, `listening on wss://HOST:PORT` (or ws://), and runs until
    /// SIGINT or SIGTERM. Its flags are the simulator's own (tools/sim).
    #[cfg(feature = "sim")]
    Sim(tickfeed_sim::SimArgs),
    /// The built-in Binance exchange simulator (not in this build)
    #[cfg(not(feature = "sim"))]
    #[command(hide = true, disable_help_flag = true, disable_version_flag = true)]
    Sim(SimArgs),
    /// Sim + run in one process tree: the offline, self-contained showcase
    ///
    /// Starts the built-in Binance simulator on 127.0.0.1 (TLS, throwaway CA, synthetic market)
    /// and runs the live handler against it. Needs no internet. Ctrl-C stops it.
    #[cfg(feature = "sim")]
    Demo(demo::DemoArgs),
    /// Sim + run in one process tree (not in this build: it has no simulator)
    #[cfg(not(feature = "sim"))]
    #[command(hide = true, disable_help_flag = true, disable_version_flag = true)]
    Demo(SimArgs),
    /// Rebuild books from a bus that `tickfeed run --publish` feeds, and print them
    ///
    /// Follows the fan-out records (docs/wire.md) from iceoryx2 shared memory on this host or from
    /// a NATS server. Each book starts from a snapshot record and applies each diff that continues
    /// it; a lost record makes it wait for the next snapshot. Prints the same lines as `run`.
    Subscribe(subscribe::SubscribeArgs),
    /// Print a shell completion script to stdout
    ///
    /// For example `tickfeed completions bash > ~/.local/share/bash-completion/completions/tickfeed`.
    Completions(CompletionsArgs),
}

/// `tickfeed sim ARGS...` / `tickfeed demo ARGS...` in a build without the simulator: any
/// arguments are taken, so that the answer is the one line saying why, not a flag error.
#[cfg(not(feature = "sim"))]
#[derive(Debug, Clone, Args)]
#[command(trailing_var_arg = true)]
pub(crate) struct SimArgs {
    /// Ignored: this build has no simulator
    #[arg(num_args = 0.., allow_hyphen_values = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// `tickfeed completions SHELL`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl Command {
    /// Runs the command; `Ok` carries the exit status (0 but for `sim`, which picks its own).
    pub(crate) fn execute(&self) -> Result<ExitCode, CmdError> {
        match self {
            Command::Run(a) => run::run(a).map(|()| ExitCode::SUCCESS),
            Command::Replay(a) => replay::replay(a).map(|()| ExitCode::SUCCESS),
            Command::Subscribe(a) => subscribe::subscribe(a).map(|()| ExitCode::SUCCESS),
            #[cfg(feature = "sim")]
            Command::Demo(a) => demo::demo(a).map(|()| ExitCode::SUCCESS),
            #[cfg(not(feature = "sim"))]
            Command::Demo(_) => Err(CmdError::NoSimulator("demo")),
            #[cfg(feature = "sim")]
            // The simulator prints its own one-line errors and chooses its exit code.
            Command::Sim(a) => Ok(ExitCode::from(tickfeed_sim::run_args(a.clone()).clamp(0, 255) as u8)),
            #[cfg(not(feature = "sim"))]
            Command::Sim(_) => Err(CmdError::NoSimulator("sim")),
            Command::Completions(a) => {
                clap_complete::generate(a.shell, &mut Cli::command(), "tickfeed", &mut std::io::stdout());
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// The subcommand `args` (argv, program name first) is for, if it names one: for error lines.
fn subcommand_of(args: &[OsString]) -> Option<String> {
    let first = args.get(1)?.to_str()?;
    Cli::command().get_subcommands().any(|c| c.get_name() == first).then(|| first.to_owned())
}

/// Parses `args` (argv, program name first), runs the command and returns the exit status.
/// Help and version go to stdout (exit 0); every error is one line on stderr (exit 2).
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return parse_failure(&e, subcommand_of(&args).as_deref()),
    };
    match cli.command.execute() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tickfeed: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn parse_failure(e: &clap::Error, cmd: Option<&str>) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // stdout; a closed pipe (`| head`) is not an error worth a line.
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `tickfeed` alone: the overview, on stderr, exit 2 (nothing was asked for).
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            eprintln!("tickfeed: {}", usage_line(e, cmd));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests;
