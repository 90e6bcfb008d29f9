//! `tickfeed demo`: the README's first command works offline, end to end, over TLS.

use std::process::Command;

#[test]
fn demo_runs_offline_and_keeps_a_checked_book() {
    let dir = std::env::temp_dir().join(format!("tickfeed-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let stats = dir.join("stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["demo", "--duration", "4", "--output", "tob-json", "--stats"])
        .arg(&stats)
        .arg("--dump-book")
        .arg(dir.join("books"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("tickfeed demo: simulator on wss://127.0.0.1:"), "{err}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 10, "{} book lines", lines.len());
    for l in &lines {
        let (b, a) = (l["bid"].as_str().unwrap(), l["ask"].as_str().unwrap());
        let (b, a) =
            (tickfeed::book::fixed::parse_units_str(b).unwrap(), tickfeed::book::fixed::parse_units_str(a).unwrap());
        assert!(b < a, "crossed: {l}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(v["symbols"]["BTCUSDT"]["synced"], true);
    assert_eq!(v["gaps"], 0);
    assert_eq!(v["bad_messages"], 0);
    assert!(v["book_ticker_checks"].as_u64().unwrap() > 0, "the audit ran");
    assert_eq!(v["book_ticker_mismatches"], 0);
    assert!(v["latency_us"]["count"].as_u64().unwrap() > 0);
    assert!(dir.join("books/BTCUSDT.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_rejects_connection_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed")).args(["demo", "--ws-url", "ws://x:1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown flag --ws-url"), "{err}");
}
