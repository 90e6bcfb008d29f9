//! The hot path allocates nothing after warm-up: every frame of the real BTCUSDT recording, after
//! the book has synced and the reused buffers have grown, goes through decode -> sync -> ladder ->
//! audit -> output with zero heap allocations. A counting global allocator proves it.

mod util;

use tickfeed::capture::load_recording;
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{FrameOutcome, Pipeline, PipelineConfig};

#[global_allocator]
static A: util::alloc::Counting = util::alloc::Counting;

fn allocs() -> u64 {
    util::alloc::this_thread()
}

#[test]
fn counting_allocator_counts() {
    util::alloc::count_this_thread(true);
    let before = allocs();
    let v: Vec<u8> = Vec::with_capacity(10);
    std::hint::black_box(&v);
    assert!(allocs() > before);
}

fn frames() -> Option<Vec<(i64, Vec<u8>)>> {
    Some(load_recording(&util::recording("btcusdt_20240808.gz")?).unwrap())
}

#[test]
fn steady_state_pipeline_allocates_nothing() {
    let Some(frames) = frames() else { return };
    util::alloc::count_this_thread(true);
    for mode in [OutputMode::Tob, OutputMode::TobJson, OutputMode::Ndjson] {
        let mut cfg = PipelineConfig { output: mode, ..PipelineConfig::default() };
        // The book stays synced to the end (the recording has one snapshot; see replay_real).
        cfg.book.trust_beyond_snapshot = true;
        let mut p = Pipeline::new(cfg, &["btcusdt"]);
        let warm = 2000;
        let mut during = 0;
        for (i, (ns, json)) in frames.iter().enumerate() {
            let before = allocs();
            if p.on_frame(*ns, json) == FrameOutcome::Snapshot {
                p.on_snapshot(0, *ns, json).unwrap();
            }
            // Hand the output to a sink as the live loop does with stdout.
            p.output().discard();
            if i >= warm {
                during += allocs() - before;
            }
        }
        assert!(p.symbols()[0].book().is_synced());
        assert!(p.stats().events > 40_000);
        assert_eq!(during, 0, "{mode:?}: {during} allocations after warm-up");
    }
}
