//! What the benches share: the first real BTCUSDT recording, found where the tests find it.

use std::path::PathBuf;

/// Every line of `btcusdt_20240808.gz` from `$TICKFEED_DATA`, else `../shared/data/binance`, as
/// `(receive ns, raw JSON)`; `None`, with a `SKIP <what>: ...` line, when it cannot be read.
pub fn btcusdt_0808(what: &str) -> Option<Vec<(i64, Vec<u8>)>> {
    let dir = std::env::var_os("TICKFEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/binance"));
    let path = dir.join("btcusdt_20240808.gz");
    match tickfeed::capture::load_recording(&path) {
        Ok(lines) => Some(lines),
        Err(e) => {
            eprintln!("SKIP {what}: {}: {e}", path.display());
            None
        }
    }
}
