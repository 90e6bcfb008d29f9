//! `tickfeed run --core 0` says on stderr, in one line, when core 0 is not isolated, and says
//! nothing of the kind when it is. What "isolated" means here is read from this machine's own
//! files (`/sys/devices/system/cpu/isolated`, `nohz_full=` and `isolcpus=` on `/proc/cmdline`),
//! parsed by the test itself, so the test states the machine's truth instead of assuming one.

mod util;

use std::time::Duration;
use util::RunArgs;

/// `0-3,8` -> does it contain `cpu`? Plain ranges and single CPUs: what these files hold in
/// practice (the stride form is the unit tests' business).
fn list_has(list: &str, cpu: usize) -> bool {
    list.trim().split(',').filter(|p| !p.is_empty()).any(|p| match p.split_once('-') {
        Some((a, b)) => (a.parse::<usize>().unwrap()..=b.parse().unwrap()).contains(&cpu),
        None => p.parse::<usize>().ok() == Some(cpu),
    })
}

fn core_is_isolated(cpu: usize) -> bool {
    let isolated = std::fs::read_to_string("/sys/devices/system/cpu/isolated").unwrap_or_default();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let kernel_words = cmdline.split_whitespace().take_while(|w| *w != "--");
    let from_cmdline =
        kernel_words.filter_map(|w| w.strip_prefix("nohz_full=").or_else(|| w.strip_prefix("isolcpus="))).any(|v| {
            // isolcpus may start with flags (nohz,domain,...): keep the numeric entries.
            let nums: Vec<&str> = v.split(',').filter(|p| p.starts_with(|c: char| c.is_ascii_digit())).collect();
            list_has(&nums.join(","), cpu)
        });
    list_has(&isolated, cpu) || from_cmdline
}

#[test]
fn core_0_not_isolated_is_warned_about() {
    let _one = util::serial();
    let sim = util::sim(false, &["btcusdt"]);
    let run = RunArgs::against(&sim).flag("--core", "0").duration(1.0).output("none").run(Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let warning = "tickfeed: warning: core 0 is not isolated (isolcpus/nohz_full); other tasks run on it too";
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains("is not isolated")).collect();
    if core_is_isolated(0) {
        assert!(lines.is_empty(), "core 0 is isolated here, yet:\n{}", run.stderr);
        eprintln!("core 0 is isolated on this machine: no warning expected, none printed");
    } else {
        assert_eq!(lines, vec![warning], "stderr:\n{}", run.stderr);
    }
    // The run itself went on: the book synced.
    assert!(run.stderr.contains("synced at"), "{}", run.stderr);
}

#[test]
fn a_core_that_does_not_exist_is_still_an_error() {
    let run = RunArgs::new().flag("--core", "4096").duration(1.0).run(Duration::from_secs(30));
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("tickfeed: --core 4096: no such core"), "{}", run.stderr);
}
