//! The simulator's command line on its own, without building the `tickfeed` binary:
//! `cargo run --release -p tickfeed-sim --example sim -- --plain --symbols-count 2000`.
//! The same flags as `tickfeed sim` (`--help`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(tickfeed_sim::run_cli(&args));
}
