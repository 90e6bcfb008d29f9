//! `tickfeed replay` beside the usual approach (`usual-replay`), whole process, same input,
//! taking turns so a noisy machine weighs on both alike.
//!
//! `replay-race [--runs N] [FILE...]`: by default the two BTCUSDT recordings from
//! ../shared/data/binance (or $TICKFEED_DATA), uncompressed first into a temporary folder (both
//! programs then read the same plain files; gzip would be most of the time). Prints each one's
//! median and best wall time over N runs (default 9) and the ratio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn fail(msg: String) -> ! {
    eprintln!("replay-race: {msg}");
    std::process::exit(1);
}

fn plain_copies(files: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| fail(format!("{}: {e}", dir.display())));
    files
        .iter()
        .map(|f| {
            if f.extension().is_some_and(|e| e == "gz") {
                let out = dir.join(f.file_stem().unwrap_or_default());
                let mut r = flate2::read::MultiGzDecoder::new(
                    std::fs::File::open(f).unwrap_or_else(|e| fail(format!("{}: {e}", f.display()))),
                );
                let mut w = std::fs::File::create(&out).unwrap_or_else(|e| fail(format!("{}: {e}", out.display())));
                std::io::copy(&mut r, &mut w).unwrap_or_else(|e| fail(format!("{}: {e}", f.display())));
                out
            } else {
                f.clone()
            }
        })
        .collect()
}

fn lines(files: &[PathBuf]) -> usize {
    files.iter().map(|f| std::fs::read(f).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())).sum()
}

fn time(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| fail(format!("{cmd:?}: {e}")));
    let took = t.elapsed();
    if !out.status.success() {
        fail(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    took
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut files) = (9usize, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                runs = args.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or_else(|| {
                    eprintln!("replay-race: --runs needs a positive number");
                    std::process::exit(2)
                })
            }
            f if f.starts_with("--") => {
                eprintln!("replay-race: unknown flag {f} (usage: replay-race [--runs N] [FILE...])");
                std::process::exit(2);
            }
            f => files.push(PathBuf::from(f)),
        }
    }
    if files.is_empty() {
        let dir = std::env::var_os("TICKFEED_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/binance"));
        files = ["btcusdt_20240808.gz", "btcusdt_20240809.gz"].iter().map(|f| dir.join(f)).collect();
    }
    if let Some(missing) = files.iter().find(|f| !f.is_file()) {
        fail(format!("{} not found (set TICKFEED_DATA to the recordings' folder)", missing.display()));
    }
    let me = std::env::current_exe().unwrap_or_else(|e| fail(format!("own path: {e}")));
    let tickfeed = me.with_file_name("tickfeed");
    let usual = me.with_file_name("usual-replay");
    for b in [&tickfeed, &usual] {
        if !b.is_file() {
            fail(format!("no {} (cargo build --release -p tickfeed -p tickfeed-bench first)", b.display()));
        }
    }
    let tmp = std::env::temp_dir().join(format!("tickfeed-replay-race-{}", std::process::id()));
    let plain = plain_copies(&files, &tmp);
    let (mut t, mut u, mut ui) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        t.push(time(Command::new(&tickfeed).args(["replay", "--output", "none", "--quiet"]).args(&plain)));
        u.push(time(Command::new(&usual).args(&plain)));
        ui.push(time(Command::new(&usual).arg("--int-decimals").args(&plain)));
    }
    let n_lines = lines(&plain);
    let _ = std::fs::remove_dir_all(&tmp);
    for v in [&mut t, &mut u, &mut ui] {
        v.sort();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let tm = ms(t[runs / 2]);
    println!("| program | median ms | best ms | median vs tickfeed |\n|---|---:|---:|---:|");
    println!("| tickfeed replay | {tm:.1} | {:.1} | 1.0x |", ms(t[0]));
    for (name, v) in
        [("usual: serde_json Value + BTreeMap<Decimal>", &u), ("usual, integer decimals (tickfeed's parser)", &ui)]
    {
        let m = ms(v[runs / 2]);
        println!("| {name} | {m:.1} | {:.1} | {:.1}x |", ms(v[0]), m / tm);
    }
    println!("{runs} runs each, taking turns, {n_lines} lines in {} files", plain.len());
}
