//! A websocket text payload through the whole pipeline: envelope split, every JSON decoder, the
//! book, the audit and the output. Nothing panics; a bad payload is a counted bad message. The
//! same bytes as a REST snapshot body go through the snapshot decoder and the sync engine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{Pipeline, PipelineConfig};

fuzz_target!(|data: &[u8]| {
    let cfg = PipelineConfig { output: OutputMode::Ndjson, ..PipelineConfig::default() };
    let mut p = Pipeline::new(cfg, &["btcusdt"]);
    let _ = p.on_frame(1, data);
    let _ = p.on_snapshot(0, 2, data);
    let _ = p.on_frame(3, data);
    p.output().discard();
});
