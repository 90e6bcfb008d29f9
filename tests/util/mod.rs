//! Shared helpers for the integration tests: locating the shared Binance recordings.
#![allow(dead_code)]

use std::path::PathBuf;

/// The folder of the real Binance recordings: `$TICKFEED_DATA`, else `../shared/data/binance`
/// beside the checkout. `None` (after printing a clear skip line) when the file is absent.
pub fn recording(file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("TICKFEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/binance"));
    let p = dir.join(file);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIP: recording {} not found (set TICKFEED_DATA to the folder holding it)", p.display());
        None
    }
}
