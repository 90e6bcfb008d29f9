//! Is the core `--core N` pins the event loop to fit for it? Warnings for a core the kernel still
//! schedules other work on, and for a hyperthread sibling that is busy.
//!
//! Sans-IO: [`warnings`] is a pure function of the texts Linux exposes (`/sys/devices/system/cpu/
//! isolated`, the core's `topology/thread_siblings_list`, `/proc/cmdline`) and of which CPUs were
//! busy, computed by [`busy_cpus`] from two `/proc/stat` samples. [`check`] is the thin driver that
//! reads those files. Nothing here is an error: a file that is missing or unreadable (another
//! kernel, a container) just means that check is skipped. That the core exists at all is
//! `live::check_core`'s, an error at start.
//!
//! It does not tune anything, nor look at IRQ affinity or the CPU governor: docs/tuning.md says
//! how to set those up and how to check them.

use std::fmt;
use std::time::Duration;

/// A CPU list in the kernel's syntax could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CpuListError {
    /// The part of the list that is wrong.
    pub(crate) part: String,
}

impl fmt::Display for CpuListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad CPU list entry {:?}", self.part)
    }
}

impl std::error::Error for CpuListError {}

/// Largest CPU number accepted, so a hostile or corrupt list cannot ask for a huge allocation
/// (Linux's own NR_CPUS limit is 8192).
const MAX_CPU: usize = 8191;

fn cpu_number(s: &str, part: &str) -> Result<usize, CpuListError> {
    let bad = || CpuListError { part: part.to_string() };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse::<usize>().ok().filter(|&n| n <= MAX_CPU).ok_or_else(bad)
}

/// Parses a CPU list as the kernel writes and accepts it: `0-3,8,10-11`, with the stride form
/// `0-15:2/4` (of each group of 4 from 0 to 15, the first 2), surrounding whitespace and an empty
/// list allowed. Returns the CPUs sorted, without duplicates.
pub(crate) fn parse_cpu_list(text: &str) -> Result<Vec<usize>, CpuListError> {
    let mut cpus = Vec::new();
    let text = text.trim();
    if text.is_empty() {
        return Ok(cpus);
    }
    for part in text.split(',') {
        let bad = || CpuListError { part: part.to_string() };
        let (range, stride) = match part.split_once(':') {
            Some((r, s)) => {
                let (used, group) = s.split_once('/').ok_or_else(bad)?;
                let (used, group) = (cpu_number(used, part)?, cpu_number(group, part)?);
                if used == 0 || group == 0 || used > group {
                    return Err(bad());
                }
                (r, Some((used, group)))
            }
            None => (part, None),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (cpu_number(a, part)?, cpu_number(b, part)?),
            None if stride.is_none() => {
                let n = cpu_number(range, part)?;
                (n, n)
            }
            // A stride needs a range.
            None => return Err(bad()),
        };
        if lo > hi {
            return Err(bad());
        }
        let (used, group) = stride.unwrap_or((1, 1));
        cpus.extend((lo..=hi).filter(|c| (c - lo) % group < used));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The value of `key=` on a kernel command line, if given. Only the kernel's part counts: words
/// after a lone `--` go to init. The last occurrence wins, as for the kernel's own parameters.
pub(crate) fn cmdline_param<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    let mut found = None;
    for word in cmdline.split_whitespace() {
        if word == "--" {
            break;
        }
        if let Some(v) = word.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
            found = Some(v);
        }
    }
    found
}

/// The CPUs a `/proc/cmdline` puts in `nohz_full=` (empty when absent or unreadable).
pub(crate) fn nohz_full(cmdline: &str) -> Vec<usize> {
    cmdline_param(cmdline, "nohz_full").and_then(|v| parse_cpu_list(v).ok()).unwrap_or_default()
}

/// The CPUs a `/proc/cmdline` puts in `isolcpus=`, whose list may follow flags
/// (`isolcpus=nohz,domain,managed_irq,2-3`).
pub(crate) fn isolcpus(cmdline: &str) -> Vec<usize> {
    let Some(v) = cmdline_param(cmdline, "isolcpus") else { return Vec::new() };
    // The flags are words; the list starts at the first entry that begins with a digit.
    let start = v.split(',').position(|p| p.starts_with(|c: char| c.is_ascii_digit())).unwrap_or(usize::MAX);
    let list: Vec<&str> = v.split(',').skip(start).collect();
    parse_cpu_list(&list.join(",")).unwrap_or_default()
}

/// One CPU's time counters from one `/proc/stat` line, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// The CPU number (`cpuN`).
    pub(crate) cpu: usize,
    /// Time spent running something: user, nice, system, irq, softirq.
    pub(crate) busy: u64,
    /// All time accounted: busy, idle, iowait and steal.
    pub(crate) total: u64,
}

/// The per-CPU lines of `/proc/stat` (the aggregate `cpu` line and other lines are skipped, as is
/// any line that does not parse).
pub(crate) fn parse_proc_stat(text: &str) -> Vec<CpuTimes> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(name) = it.next() else { continue };
        let Some(cpu) = name.strip_prefix("cpu").filter(|n| !n.is_empty()).and_then(|n| cpu_number(n, n).ok()) else {
            continue;
        };
        let f: Vec<u64> = it.map_while(|t| t.parse().ok()).collect();
        // user nice system idle iowait irq softirq [steal [guest guest_nice]]; guest time is
        // already inside user and nice.
        if f.len() < 7 {
            continue;
        }
        let busy = f[0] + f[1] + f[2] + f[5] + f[6];
        let steal = f.get(7).copied().unwrap_or(0);
        out.push(CpuTimes { cpu, busy, total: busy + f[3] + f[4] + steal });
    }
    out
}

/// The share of a sample a CPU must have spent running for it to count as busy: a spinning
/// thread shows as ~100%, an ordinary desktop's cores as a few percent.
pub(crate) const BUSY_SHARE: f64 = 0.5;

/// The CPUs that were busy at least [`BUSY_SHARE`] of the time between two `/proc/stat` samples.
pub(crate) fn busy_cpus(before: &[CpuTimes], after: &[CpuTimes]) -> Vec<usize> {
    let mut busy = Vec::new();
    for a in after {
        let Some(b) = before.iter().find(|b| b.cpu == a.cpu) else { continue };
        let total = a.total.saturating_sub(b.total);
        if total > 0 && a.busy.saturating_sub(b.busy) as f64 >= BUSY_SHARE * total as f64 {
            busy.push(a.cpu);
        }
    }
    busy
}

/// What the kernel says about the machine, as text, each `None` when it could not be read.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuFacts<'a> {
    /// `/sys/devices/system/cpu/isolated`.
    pub(crate) isolated: Option<&'a str>,
    /// `/proc/cmdline`.
    pub(crate) cmdline: Option<&'a str>,
    /// `/sys/devices/system/cpu/cpuN/topology/thread_siblings_list` of the pinned core (or
    /// `core_cpus_list`, its newer name).
    pub(crate) siblings: Option<&'a str>,
    /// CPUs busy just before the loop starts ([`busy_cpus`]); `None`: not sampled.
    pub(crate) busy: Option<&'a [usize]>,
}

/// One thing wrong with the pinned core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CoreWarning {
    /// Neither `isolcpus` (the isolated file) nor `nohz_full` lists the core: the scheduler
    /// puts other tasks on it and the tick interrupts it.
    NotIsolated {
        /// The core.
        core: usize,
        /// The loop will spin on it (a competing task then gets half of it, and so does the loop).
        busy_poll: bool,
    },
    /// Isolated from the scheduler, but the periodic tick still runs on it.
    TickNotStopped {
        /// The core.
        core: usize,
    },
    /// Another hardware thread of the same physical core was busy: the two share its execution
    /// units and caches.
    BusySibling {
        /// The core.
        core: usize,
        /// The busy sibling.
        sibling: usize,
    },
}

impl fmt::Display for CoreWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CoreWarning::NotIsolated { core, busy_poll: true } => write!(
                f,
                "core {core} is not isolated (isolcpus/nohz_full); busy polling on it competes with other tasks"
            ),
            CoreWarning::NotIsolated { core, busy_poll: false } => {
                write!(f, "core {core} is not isolated (isolcpus/nohz_full); other tasks run on it too")
            }
            CoreWarning::TickNotStopped { core } => {
                write!(f, "core {core} is isolated but not in nohz_full; the scheduler tick still interrupts it")
            }
            CoreWarning::BusySibling { core, sibling } => {
                write!(f, "core {core} shares its physical core with cpu {sibling}, which is busy")
            }
        }
    }
}

/// The warnings for pinning the event loop to `core`, from what the kernel says.
pub(crate) fn warnings(core: usize, busy_poll: bool, facts: &CpuFacts<'_>) -> Vec<CoreWarning> {
    let mut out = Vec::new();
    let list = |t: Option<&str>| t.and_then(|t| parse_cpu_list(t).ok());
    let isolated = list(facts.isolated);
    let (nohz, cmd_isol) = match facts.cmdline {
        Some(c) => (Some(nohz_full(c)), isolcpus(c)),
        None => (None, Vec::new()),
    };
    // With neither file there is nothing to say; with either, a core in neither is not isolated.
    if isolated.is_some() || nohz.is_some() {
        let in_isolated = isolated.as_ref().is_some_and(|l| l.contains(&core)) || cmd_isol.contains(&core);
        let in_nohz = nohz.as_ref().is_some_and(|l| l.contains(&core));
        if !in_isolated && !in_nohz {
            out.push(CoreWarning::NotIsolated { core, busy_poll });
        } else if in_isolated && nohz.is_some() && !in_nohz {
            out.push(CoreWarning::TickNotStopped { core });
        }
    }
    if let (Some(siblings), Some(busy)) = (list(facts.siblings), facts.busy) {
        for s in siblings.into_iter().filter(|&s| s != core && busy.contains(&s)) {
            out.push(CoreWarning::BusySibling { core, sibling: s });
        }
    }
    out
}

/// How long the driver watches `/proc/stat` to tell which CPUs are busy.
pub(crate) const SAMPLE: Duration = Duration::from_millis(100);

/// Reads the files for `core` (sampling `/proc/stat` over [`SAMPLE`], only when the core has a
/// sibling to ask about) and returns [`warnings`].
pub(crate) fn check(core: usize, busy_poll: bool) -> Vec<CoreWarning> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let isolated = read("/sys/devices/system/cpu/isolated");
    let cmdline = read("/proc/cmdline");
    let topo = format!("/sys/devices/system/cpu/cpu{core}/topology");
    let siblings = read(&format!("{topo}/thread_siblings_list")).or_else(|| read(&format!("{topo}/core_cpus_list")));
    let has_sibling =
        siblings.as_deref().and_then(|s| parse_cpu_list(s).ok()).is_some_and(|l| l.iter().any(|&c| c != core));
    let busy = if has_sibling {
        read("/proc/stat").and_then(|before| {
            std::thread::sleep(SAMPLE);
            read("/proc/stat").map(|after| busy_cpus(&parse_proc_stat(&before), &parse_proc_stat(&after)))
        })
    } else {
        None
    };
    let facts = CpuFacts {
        isolated: isolated.as_deref(),
        cmdline: cmdline.as_deref(),
        siblings: siblings.as_deref(),
        busy: busy.as_deref(),
    };
    warnings(core, busy_poll, &facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> Vec<usize> {
        parse_cpu_list(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn cpu_lists_in_the_kernels_syntax() {
        assert_eq!(list(""), Vec::<usize>::new());
        assert_eq!(list("\n"), Vec::<usize>::new());
        assert_eq!(list("0\n"), vec![0]);
        assert_eq!(list("0-3,8,10-11"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(list("5,1-2,2"), vec![1, 2, 5]);
        assert_eq!(list("3-3"), vec![3]);
        assert_eq!(list("0-15:2/4"), vec![0, 1, 4, 5, 8, 9, 12, 13]);
        assert_eq!(list("2-9:1/3"), vec![2, 5, 8]);
        assert_eq!(list("8191"), vec![8191]);
    }

    #[test]
    fn malformed_cpu_lists_are_errors() {
        for bad in [
            "a",
            "1,",
            ",1",
            "1,,2",
            "3-1",
            "-1",
            "1-",
            "1 2",
            "0x3",
            "+1",
            "8192",
            "99999999999999999999",
            "0-3:0/4",
            "0-3:5/4",
            "0-3:1",
            "3:1/2",
            "0-3:1/0",
            "1-2-3",
        ] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?} parsed as {:?}", parse_cpu_list(bad));
        }
        assert_eq!(parse_cpu_list("0-3,x").unwrap_err().part, "x");
    }

    const CMDLINE: &str =
        "BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=nohz,domain,managed_irq,2-3 nohz_full=2-3 rcu_nocbs=2-3 quiet";

    #[test]
    fn command_line_parameters() {
        assert_eq!(nohz_full(CMDLINE), vec![2, 3]);
        assert_eq!(isolcpus(CMDLINE), vec![2, 3]);
        assert_eq!(isolcpus("isolcpus=1,5-6"), vec![1, 5, 6]);
        assert_eq!(cmdline_param(CMDLINE, "rcu_nocbs"), Some("2-3"));
        // Words after `--` are init's, and a key is matched whole.
        assert_eq!(nohz_full("quiet -- nohz_full=1"), Vec::<usize>::new());
        assert_eq!(cmdline_param("xnohz_full=1 nohz_fullx=2", "nohz_full"), None);
        assert_eq!(nohz_full("nohz_full=1 nohz_full=3"), vec![3]);
        // A garbled list is treated as no list, not as a panic.
        assert_eq!(nohz_full("nohz_full=zz"), Vec::<usize>::new());
    }

    const STAT_1: &str = "cpu  1000 0 500 8000 10 0 20 0 0 0
cpu0 500 0 250 4000 5 0 10 0 0 0
cpu1 500 0 250 4000 5 0 10 0 0 0
intr 12345 0 0
ctxt 999
";
    // cpu1 ran 95 of 100 ticks; cpu0 5 of 100.
    const STAT_2: &str = "cpu  1100 0 500 8100 10 0 20 0 0 0
cpu0 503 0 251 4095 5 0 11 0 0 0
cpu1 590 0 255 4005 5 0 10 0 0 0
";

    #[test]
    fn busy_cpus_from_two_samples() {
        let a = parse_proc_stat(STAT_1);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], CpuTimes { cpu: 0, busy: 760, total: 4765 });
        let b = parse_proc_stat(STAT_2);
        assert_eq!(busy_cpus(&a, &b), vec![1]);
        // No time passed, or a CPU missing from one sample: not busy.
        assert_eq!(busy_cpus(&a, &a), Vec::<usize>::new());
        assert_eq!(busy_cpus(&a[..1], &b), Vec::<usize>::new());
        // Short or garbled lines are skipped.
        assert_eq!(parse_proc_stat("cpu0 1 2 3\ncpux 1 2 3 4 5 6 7\ncpu 1 2 3 4 5 6 7\n"), vec![]);
    }

    #[test]
    fn a_core_in_neither_list_is_not_isolated() {
        let facts = CpuFacts { isolated: Some("\n"), cmdline: Some("quiet"), ..CpuFacts::default() };
        let w = warnings(1, true, &facts);
        assert_eq!(w, vec![CoreWarning::NotIsolated { core: 1, busy_poll: true }]);
        assert_eq!(
            w[0].to_string(),
            "core 1 is not isolated (isolcpus/nohz_full); busy polling on it competes with other tasks"
        );
        assert!(warnings(1, false, &facts)[0].to_string().ends_with("other tasks run on it too"));
        // Isolated elsewhere is still not this core.
        let facts = CpuFacts { isolated: Some("2-3\n"), cmdline: Some(CMDLINE), ..CpuFacts::default() };
        assert_eq!(warnings(1, true, &facts), vec![CoreWarning::NotIsolated { core: 1, busy_poll: true }]);
    }

    #[test]
    fn an_isolated_core_is_quiet() {
        let facts = CpuFacts { isolated: Some("2-3\n"), cmdline: Some(CMDLINE), ..CpuFacts::default() };
        assert_eq!(warnings(2, true, &facts), vec![]);
        // nohz_full alone (no isolcpus) counts as isolated.
        let facts = CpuFacts { isolated: Some(""), cmdline: Some("nohz_full=1"), ..CpuFacts::default() };
        assert_eq!(warnings(1, true, &facts), vec![]);
        // Nothing readable: nothing to say.
        assert_eq!(warnings(1, true, &CpuFacts::default()), vec![]);
    }

    #[test]
    fn isolated_without_nohz_full_keeps_the_tick() {
        let facts = CpuFacts { isolated: Some("1"), cmdline: Some("quiet"), ..CpuFacts::default() };
        let w = warnings(1, true, &facts);
        assert_eq!(w, vec![CoreWarning::TickNotStopped { core: 1 }]);
        assert!(w[0].to_string().contains("tick"));
    }

    #[test]
    fn a_busy_hyperthread_sibling_is_named() {
        let busy = [0, 3];
        let facts = CpuFacts {
            isolated: Some("1,3"),
            cmdline: Some("nohz_full=1,3"),
            siblings: Some("1,3\n"),
            busy: Some(&busy),
        };
        let w = warnings(1, true, &facts);
        assert_eq!(w, vec![CoreWarning::BusySibling { core: 1, sibling: 3 }]);
        assert_eq!(w[0].to_string(), "core 1 shares its physical core with cpu 3, which is busy");
        // An idle sibling, or one core per physical core, is fine.
        let idle = [0];
        assert_eq!(warnings(1, true, &CpuFacts { busy: Some(&idle), ..facts.clone() }), vec![]);
        assert_eq!(warnings(1, true, &CpuFacts { siblings: Some("1"), ..facts.clone() }), vec![]);
        // Both warnings at once.
        let facts = CpuFacts { isolated: Some(""), cmdline: Some(""), siblings: Some("1,3"), busy: Some(&busy) };
        assert_eq!(warnings(1, false, &facts).len(), 2);
    }
}
