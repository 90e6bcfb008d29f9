//! The `tickfeed` binary: the commands of the command-line contract (see [`tickfeed::cmd`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    tickfeed::cmd::main(std::env::args_os())
}
