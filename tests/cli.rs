//! The `tickfeed` command line as a user meets it: help and version on stdout, every mistake one
//! line on stderr with exit 2, exit files checked before the run starts, shell completions, and
//! the build without the simulator.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn tickfeed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tickfeed")).args(args).output().expect("run tickfeed")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Exit 2 and exactly one stderr line containing `want`.
fn assert_one_line_error(args: &[&str], want: &str) {
    let o = tickfeed(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("tickfeed: ") && err.contains(want), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?}");
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tickfeed-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn help_and_version_print_to_stdout_and_exit_0() {
    for args in [&["--help"][..], &["-h"], &["run", "--help"], &["run", "-h"], &["replay", "--help"], &["help", "run"]]
    {
        let o = tickfeed(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(stdout(&o).contains("Usage: tickfeed"), "{args:?}: {}", stdout(&o));
        assert!(o.stderr.is_empty(), "{args:?}");
    }
    let o = tickfeed(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).trim(), format!("tickfeed {}", env!("CARGO_PKG_VERSION")));
    // Nothing asked for: the overview on stderr, exit 2.
    let o = tickfeed(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Commands:") && o.stdout.is_empty());
}

#[test]
fn replay_help_documents_every_flag() {
    let help = stdout(&tickfeed(&["replay", "--help"]));
    for flag in [
        "--symbol",
        "--no-measure",
        "--pace",
        "--speed",
        "--output",
        "--dump-book",
        "--stats",
        "--hist",
        "--max-events",
        "--window-ticks",
        "--quiet",
        "FILE_OR_DIR",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn command_line_mistakes_are_one_line_and_exit_2() {
    assert_one_line_error(&["run", "--bogus"], "run: unknown flag --bogus (see tickfeed run --help)");
    assert_one_line_error(&["run", "--stat", "x"], "did you mean --stats?");
    assert_one_line_error(&["run", "stray"], "run: unexpected argument 'stray'");
    assert_one_line_error(&["frobnicate"], "unknown command 'frobnicate' (expected run, replay");
    assert_one_line_error(&["run", "--symbol", ""], "--symbol: empty symbol");
    assert_one_line_error(&["run", "--symbol", "btcusdt,,ethusdt"], "--symbol: empty symbol");
    assert_one_line_error(&["run", "--streams", ""], "--streams: empty stream name");
    assert_one_line_error(&["run", "--depth-limit", "5001"], "--depth-limit: 5001 is outside 1..5000");
    assert_one_line_error(&["run", "--output"], "run: --output needs a value (MODE)");
    assert_one_line_error(&["run", "--output", "tob", "--output", "none"], "--output given twice");
    assert_one_line_error(&["run", "--quiet=yes"], "--quiet takes no value");
    assert_one_line_error(&["run", "--duration", "-3"], "--duration: -3 is not a number of seconds");
    assert_one_line_error(&["replay", "--max-events", "many", "x"], "--max-events: 'many' is not a valid number");
    assert_one_line_error(&["replay"], "replay: missing <FILE_OR_DIR>");
    assert_one_line_error(&["completions", "tcsh"], "invalid value 'tcsh'");
}

#[test]
fn window_ticks_has_the_ladders_bounds() {
    use tickfeed::book::{MAX_WINDOW_TICKS, MIN_WINDOW_TICKS};
    let range = format!("{MIN_WINDOW_TICKS}..{MAX_WINDOW_TICKS}");
    for bad in [MAX_WINDOW_TICKS + 1, MIN_WINDOW_TICKS - 1, 1 << 24] {
        let v = bad.to_string();
        assert_one_line_error(&["run", "--window-ticks", &v], &format!("--window-ticks: {bad} is outside {range}"));
        assert_one_line_error(
            &["replay", "--window-ticks", &v, "x"],
            &format!("--window-ticks: {bad} is outside {range}"),
        );
    }
    assert!(stdout(&tickfeed(&["run", "--help"])).contains(&range), "--help states the range");
}

#[test]
fn unwritable_exit_files_are_reported_at_start() {
    let dir = temp_dir("exit-files");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("stats.json");
    let missing = dir.join("no/such/folder/stats.json");
    let (under_file, missing) = (under_file.to_str().unwrap(), missing.to_str().unwrap());
    let books = file.join("books");
    // A REST base nobody answers on: were the check left to the end, the run would spend its
    // whole --duration retrying exchangeInfo before failing.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (ws, rest) = (format!("ws://{dead}"), format!("http://{dead}"));
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--ws-url", &ws, "--rest-url", &rest, "--no-busy-poll", "--duration", "20"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (run(&["--stats", missing]), "--stats "),
        (run(&["--stats", under_file]), "--stats "),
        (run(&["--hist", missing]), "--hist "),
        (run(&["--hist", dir.to_str().unwrap()]), "--hist "),
        (run(&["--dump-book", books.to_str().unwrap()]), "--dump-book "),
        (vec!["replay".into(), file.to_str().unwrap().into(), "--stats".into(), missing.into()], "--stats "),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = Instant::now();
        assert_one_line_error(&args, want);
        assert!(stderr(&tickfeed(&args)).contains("cannot be written"), "{args:?}");
        assert!(t.elapsed() < Duration::from_secs(10), "{args:?}: reported at start, not at exit");
    }
    // The probe leaves nothing behind, and an existing file is kept as it was.
    let ok = dir.join("stats.json");
    let o =
        tickfeed(&["replay", file.to_str().unwrap(), "--quiet", "--stats", ok.to_str().unwrap(), "--output", "none"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(ok.is_file(), "written at exit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_for_each_shell() {
    for (shell, want) in [("bash", "--depth-limit"), ("zsh", "--depth-limit"), ("fish", "-l depth-limit")] {
        let o = tickfeed(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains(want), "{shell}: no {want} in:\n{script}");
        assert!(script.contains("replay") && script.contains("window-ticks"), "{shell}: subcommands and shared flags");
    }
}

#[cfg(feature = "sim")]
#[test]
fn sim_passes_its_arguments_to_the_simulator() {
    let o = tickfeed(&["sim", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("--listen"), "{}", stdout(&o));
    let o = tickfeed(&["sim", "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[cfg(not(feature = "sim"))]
#[test]
fn a_build_without_the_simulator_says_so() {
    for cmd in ["demo", "sim"] {
        assert_one_line_error(&[cmd], "this build of tickfeed has no simulator");
        assert_one_line_error(&[cmd, "--duration", "1"], "this build of tickfeed has no simulator");
    }
    assert!(!stdout(&tickfeed(&["--help"])).contains("demo"), "hidden from the overview");
}
