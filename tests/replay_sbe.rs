//! The real BTCUSDT recording (0808 then 0809) converted to SBE lines by the simulator's encoder
//! (`tickfeed_sim::convert`, `tickfeed sim --convert-to-sbe`) and replayed: the same final book
//! (`--dump-book`, byte for byte) and the same counts as the JSON replay, and the bestBidAsk
//! audit checks exactly what the JSON bookTicker audit checks (1,072 checks, 0 mismatches, the
//! shared README's figures, verified on the JSON replay first). Skips, saying so, where the
//! recordings are absent.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

fn replay(dir: &Path, name: &str, files: &[PathBuf]) -> (serde_json::Value, String) {
    let stats = dir.join(format!("{name}.stats.json"));
    let books = dir.join(format!("{name}-books"));
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["replay", "--output", "none", "--quiet", "--trust-beyond-snapshot", "--dump-book"])
        .arg(&books)
        .arg("--stats")
        .arg(&stats)
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    (v, std::fs::read_to_string(books.join("BTCUSDT.json")).unwrap())
}

#[test]
fn btcusdt_converted_to_sbe_replays_to_the_same_book_and_counts_as_json() {
    let (Some(a), Some(b)) = (util::recording("btcusdt_20240808.gz"), util::recording("btcusdt_20240809.gz")) else {
        return;
    };
    let dir = util::temp_dir("replay-sbe");
    let (ca, cb) = (dir.join("btcusdt_20240808.sbe.gz"), dir.join("btcusdt_20240809.sbe.gz"));
    let c0 = tickfeed_sim::convert::convert_file(&a, &ca).unwrap();
    let c1 = tickfeed_sim::convert::convert_file(&b, &cb).unwrap();
    assert_eq!(c0.lines + c1.lines, 41249 + 58325);
    assert_eq!((c0.diffs + c1.diffs, c0.trades + c1.trades, c0.book_tickers + c1.book_tickers), (6495, 19904, 73174));
    assert_eq!(c0.kept + c1.kept, 1, "the REST snapshot");
    // The command-line converter writes the same lines.
    let cli_out = dir.join("cli.sbe");
    let out =
        Command::new(env!("CARGO_BIN_EXE_tickfeed")).arg("sim").arg("--convert-to-sbe").arg(&a).arg(&cli_out).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains(&format!("{} diffs, {} trades", c0.diffs, c0.trades)), "{said}");
    let lib_lines = {
        let mut r = tickfeed::capture::open_recording(&ca).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut r, &mut s).unwrap();
        s
    };
    assert_eq!(std::fs::read_to_string(&cli_out).unwrap(), lib_lines);

    let (j, jbook) = replay(&dir, "json", &[a, b]);
    // The JSON figures first (the shared README's).
    assert_eq!(
        (j["depth_updates"].as_u64(), j["trades"].as_u64(), j["book_tickers"].as_u64()),
        (Some(6495), Some(19904), Some(73174))
    );
    assert_eq!((j["book_ticker_checks"].as_u64(), j["book_ticker_mismatches"].as_u64()), (Some(1072), Some(0)));
    let (s, sbook) = replay(&dir, "sbe", &[ca, cb]);
    assert_eq!(sbook, jbook, "the same final book");
    for k in [
        "events",
        "depth_updates",
        "trades",
        "book_tickers",
        "bad_messages",
        "resyncs",
        "gaps",
        "book_ticker_checks",
        "book_ticker_mismatches",
        "trade_id_gaps",
        "duplicates",
        "dropped_diffs",
        "malformed_lines",
    ] {
        assert_eq!(s[k], j[k], "{k}");
    }
    assert_eq!(s["symbols"], j["symbols"]);
    assert_eq!(s["sbe_frames"].as_u64(), Some(6495 + 19904 + 73174));
    assert_eq!((j["sbe_frames"].as_u64(), s["bad_base64_lines"].as_u64()), (Some(0), Some(0)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_base64_lines_are_skipped_and_counted() {
    let dir = util::temp_dir("replay-bad-b64");
    let f = dir.join("bad.txt");
    std::fs::write(&f, "1723161253937085768 ~not*base64\n1723161253937085769 ~Zg=\n1723161253937085770 ~AAAA\n")
        .unwrap();
    let stats = dir.join("stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["replay", "--output", "none", "--quiet", "--stats"])
        .arg(&stats)
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(v["bad_base64_lines"], 2);
    // Good base64 of a frame that is no SBE message: a bad message, not a crash.
    assert_eq!((v["sbe_frames"].as_u64(), v["bad_messages"].as_u64()), (Some(1), Some(1)));
    let _ = std::fs::remove_dir_all(&dir);
}
