//! `e2e`: the end-to-end benchmark (see the crate docs and docs/benchmark.md).
//!
//! `e2e [--rates 1000,10000,50000,max] [--secs N] [--data DIR] [--out FILE.json] [--modes LIST]
//! [--clients LIST] [--tickfeed PATH]` prints the markdown table on stdout and writes the JSON
//! file; progress goes to stderr. `e2e client floor|usual ...` is how the harness starts its own
//! clients. A mistake on the command line is one line and exit 2; a failed run is one line and
//! exit 1.

use std::path::PathBuf;
use std::process::ExitCode;

use tickfeed_bench::harness::{self, ClientKind, Mode, Plan, Rate};
use tickfeed_bench::report;

const HELP: &str = "\
e2e: tickfeed, a floor client and the usual tokio approach on the simulator's TLS replay of the real BTCUSDT recording

usage: e2e [options]
  --rates LIST     fixed rates in messages/s and/or max (as fast as the client reads) [1000,10000,50000,max]
  --secs N         longest run per client per rate, seconds (a fixed rate ends sooner if the recording runs out) [10]
  --modes LIST     pinned-busy, pinned-block, unpinned-busy, unpinned-block, or all [all]
  --clients LIST   floor, tickfeed, usual (ratios need floor) [floor,tickfeed,usual]
  --data DIR       folder of btcusdt_20240808.gz and btcusdt_20240809.gz [$TICKFEED_DATA, else ../shared/data/binance beside the repo]
  --out FILE       the JSON report [target/<profile>/e2e-report.json; client logs in target/<profile>/e2e-runs/]
  --tickfeed PATH  the tickfeed binary [target/<profile>/tickfeed, beside this one]
  -h, --help       this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        return match harness::client_main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("e2e client: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let opts = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("e2e: {e}");
            return ExitCode::from(2);
        }
    };
    match run(opts, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Opts {
    plan: Plan,
    out: PathBuf,
}

fn list<T>(v: &str, what: &str, f: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    let items: Vec<&str> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        return Err(format!("{what}: empty list"));
    }
    items.into_iter().map(|s| f(s).ok_or_else(|| format!("{what}: unknown value {s:?}"))).collect()
}

fn parse(args: &[String]) -> Result<Option<Opts>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let bin_dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let mut rates = vec![Rate::Fixed(1000), Rate::Fixed(10_000), Rate::Fixed(50_000), Rate::Max];
    let mut secs = 10.0;
    let mut modes = Mode::ALL.to_vec();
    let mut clients = ClientKind::ALL.to_vec();
    let mut data = None;
    let mut out = bin_dir.join("e2e-report.json");
    let mut tickfeed = bin_dir.join("tickfeed");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value (--help lists the flags)"));
        match flag.as_str() {
            "--rates" => {
                rates = list(value?, "--rates", |s| match s {
                    "max" => Some(Rate::Max),
                    n => n.parse::<u32>().ok().filter(|&n| (1..=1_000_000).contains(&n)).map(Rate::Fixed),
                })
                .map_err(|e| format!("{e} (a rate is 1..1000000 messages/s or max)"))?
            }
            "--secs" => {
                let v = value?;
                secs = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                    .ok_or_else(|| format!("--secs: {v:?} is not a number of seconds in (0, 3600]"))?
            }
            "--modes" => {
                let v = value?;
                modes = if v == "all" { Mode::ALL.to_vec() } else { list(v, "--modes", Mode::parse)? }
            }
            "--clients" => clients = list(value?, "--clients", ClientKind::parse)?,
            "--data" => data = Some(PathBuf::from(value?)),
            "--out" => out = PathBuf::from(value?),
            "--tickfeed" => tickfeed = PathBuf::from(value?),
            other => return Err(format!("unknown flag {other} (--help lists the flags)")),
        }
    }
    let data = data
        .or_else(|| std::env::var_os("TICKFEED_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/binance"));
    let files: Vec<PathBuf> = harness::RECORDING.iter().map(|f| data.join(f)).collect();
    // Keep the floor first: the other rows' ratios are to it.
    clients.sort_by_key(|c| ClientKind::ALL.iter().position(|k| k == c));
    clients.dedup();
    let work = bin_dir.join("e2e-runs");
    Ok(Some(Opts { plan: Plan { rates, secs, modes, clients, files, tickfeed, self_exe: exe, work }, out }))
}

fn run(opts: Opts, args: &[String]) -> Result<(), String> {
    let plan = &opts.plan;
    if let Some(missing) = plan.files.iter().find(|f| !f.is_file()) {
        return Err(format!(
            "the BTCUSDT recording is absent: {} not found (pass --data DIR or set TICKFEED_DATA to the folder holding {})",
            missing.display(),
            harness::RECORDING.join(" and ")
        ));
    }
    if plan.clients.contains(&ClientKind::Tickfeed) && !plan.tickfeed.is_file() {
        return Err(format!(
            "no tickfeed binary at {} (build it first: cargo build --release -p tickfeed, or pass --tickfeed PATH)",
            plan.tickfeed.display()
        ));
    }
    if plan.modes.iter().any(|m| m.pinned) {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        for want in [harness::SIM_CORE, harness::CLIENT_CORE] {
            if !cores.iter().any(|c| c.id == want) {
                return Err(format!("the pinned modes need cores 0 and 1; core {want} is not available (use --modes unpinned-busy,unpinned-block)"));
            }
        }
    }
    let mut machine = report::Machine::now();
    eprintln!(
        "e2e: {} cpus ({}), load {}; {} modes x {} rates x {} clients, up to {} s each",
        machine.cpus,
        machine.cpu_model,
        machine.load_before,
        plan.modes.len(),
        plan.rates.len(),
        plan.clients.len(),
        plan.secs
    );
    let runs = harness::run_plan(plan, |r| {
        eprintln!(
            "e2e:   {} {} {}: {} events, {:.0}/s, latency_us p50 {} p99 {} p99.9 {} max {}{}",
            r.client,
            r.mode,
            r.rate,
            r.events,
            r.events_per_s,
            r.latency_us.p50,
            r.latency_us.p99,
            r.latency_us.p999,
            r.latency_us.max,
            if r.notes.is_empty() { String::new() } else { format!(" ({})", r.notes.join("; ")) }
        )
    })?;
    machine.load_after = report::loadavg();
    println!("{}", report::table(&runs));
    println!("{}", report::targets(&runs));
    println!(
        "Machine: {} cpus ({}), load average {} before, {} after.",
        machine.cpus, machine.cpu_model, machine.load_before, machine.load_after
    );
    let doc = report::Document {
        command: args.to_vec(),
        machine,
        recording: plan.files.iter().map(|f| f.display().to_string()).collect(),
        secs: plan.secs,
        runs: &runs,
    };
    let json = serde_json::to_string_pretty(&doc).map_err(|e| format!("report: {e}"))?;
    if let Some(dir) = opts.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&opts.out, json + "\n").map_err(|e| format!("{}: {e}", opts.out.display()))?;
    eprintln!("e2e: wrote {}", opts.out.display());
    Ok(())
}
