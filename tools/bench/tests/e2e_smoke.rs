//! The whole `e2e` command path at a tiny rate: 500 messages/s, 1 s per client, one blocking,
//! unpinned mode (nothing spins, so it is safe on CI's 2 cores). Each of the three clients must
//! have received messages and recorded latencies, tickfeed's book must be synced, and the table
//! and the JSON report must have their rows. Skips, saying so, without the real recording.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn recording_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TICKFEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/binance"));
    for f in ["btcusdt_20240808.gz", "btcusdt_20240809.gz"] {
        if !dir.join(f).is_file() {
            eprintln!(
                "SKIP e2e_smoke: recording {} not found (set TICKFEED_DATA to the folder holding it)",
                dir.join(f).display()
            );
            return None;
        }
    }
    Some(dir)
}

#[test]
fn three_clients_at_a_tiny_rate() {
    let Some(data) = recording_dir() else { return };
    let e2e = PathBuf::from(env!("CARGO_BIN_EXE_e2e"));
    // `cargo test --workspace` builds the tickfeed binary into the same profile folder.
    let tickfeed = e2e.with_file_name(format!("tickfeed{}", std::env::consts::EXE_SUFFIX));
    assert!(
        tickfeed.is_file(),
        "no tickfeed binary at {} (cargo test --workspace builds it; or cargo build -p tickfeed first)",
        tickfeed.display()
    );
    let dir = std::env::temp_dir().join(format!("tickfeed-e2e-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("report.json");
    let started = Instant::now();
    let run = Command::new(&e2e)
        .args(["--rates", "500", "--secs", "1", "--modes", "unpinned-block"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .arg("--tickfeed")
        .arg(&tickfeed)
        .output()
        .expect("run e2e");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "e2e failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", run.status);
    assert!(took < Duration::from_secs(60), "took {took:?}");

    for client in ["floor", "tickfeed", "usual"] {
        let row = format!("| {client} | unpinned-block | 500/s | ");
        assert!(stdout.contains(&row), "no {client} row in:\n{stdout}");
    }
    assert!(stdout.contains("unpinned-block 500/s: p50"), "no target line in:\n{stdout}");

    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{v}");
    for r in runs {
        let name = r["client"].as_str().unwrap();
        let events = r["events"].as_u64().unwrap();
        // 500/s for about a second; the replay's first second has depth, trades and bookTickers.
        assert!((200..=700).contains(&events), "{name}: {events} events in {}", r["window_s"]);
        assert!(r["latency_us"]["count"].as_u64().unwrap() > 0, "{name}: no latency samples: {r}");
        assert!(r["latency_us"]["p50"].as_u64().unwrap() > 0, "{name}: zero median latency: {r}");
        assert!(r["events_per_s"].as_f64().unwrap() > 100.0, "{name}: {r}");
        assert_eq!(r["ok"], true, "{name}: {r}");
    }
    let tf = runs.iter().find(|r| r["client"] == "tickfeed").unwrap();
    assert_eq!(tf["tickfeed"]["synced"], true, "{tf}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_flags_are_one_line_and_exit_2() {
    let e2e = env!("CARGO_BIN_EXE_e2e");
    for args in [&["--rates", "fast"][..], &["--secs", "-1"], &["--modes", "sideways"], &["--bogus"], &["--secs"]] {
        let o = Command::new(e2e).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("e2e: "), "{args:?}: {err}");
    }
    let o = Command::new(e2e).args(["--data", "/nonexistent"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("recording is absent"), "{err}");
}
