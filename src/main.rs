//! The `tickfeed` binary: dispatches to the commands of the command-line contract.

use std::process::ExitCode;

const USAGE: &str = "tickfeed: a low-latency Binance spot market-data feed handler

Usage: tickfeed <COMMAND> [OPTIONS]

Commands:
  run       live feed handler (default venue: Binance spot)
  replay    FILE...  the same pipeline, fed from recordings instead of a socket
  sim       the built-in Binance exchange simulator (websocket + REST, TLS or plain)
  demo      sim + run in one process tree: the offline, self-contained showcase

Run `tickfeed <COMMAND> --help` for a command's options.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let r = match cmd.as_str() {
        "replay" => tickfeed::cmd::replay_main(rest),
        "run" => tickfeed::cmd::run_main(rest),
        // The simulator prints its own one-line errors and chooses its exit code.
        "sim" => return ExitCode::from(tickfeed_sim::run_cli(rest).clamp(0, 255) as u8),
        "demo" => tickfeed::cmd::demo_main(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        "--version" | "-V" => {
            println!("tickfeed {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        other => Err(format!("unknown command '{other}' (expected run, replay, sim or demo)")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tickfeed: {e}");
            ExitCode::from(2)
        }
    }
}
