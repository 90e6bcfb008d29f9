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

/// The same recording converted to SBE frames by the simulator's encoder (bookTickers as
/// bestBidAsk): the binary path (SBE decode -> sync -> ladder -> audit -> output, ndjson's JSON
/// rendering included) allocates nothing after warm-up either.
#[test]
fn steady_state_sbe_pipeline_allocates_nothing() {
    let Some(frames) = frames() else { return };
    // (ns, SBE frame or JSON body, is binary), converted before counting.
    let mut conv: Vec<(i64, Vec<u8>, bool)> = Vec::with_capacity(frames.len());
    let (mut frame, mut line, mut bin) = (Vec::new(), Vec::new(), Vec::new());
    for (ns, json) in &frames {
        let mut l = format!("{ns} ").into_bytes();
        l.extend_from_slice(json);
        match tickfeed_sim::convert::convert_line(&l, &mut frame, &mut line).unwrap() {
            tickfeed_sim::convert::Converted::Sbe => {
                let b64 = &line[line.iter().position(|&c| c == b'~').unwrap() + 1..];
                tickfeed::capture::base64::decode_into(b64, &mut bin).unwrap();
                conv.push((*ns, bin.clone(), true));
            }
            tickfeed_sim::convert::Converted::Kept => conv.push((*ns, json.clone(), false)),
        }
    }
    util::alloc::count_this_thread(true);
    for mode in [OutputMode::Tob, OutputMode::TobJson, OutputMode::Ndjson] {
        let mut cfg = PipelineConfig { output: mode, ..PipelineConfig::default() };
        cfg.book.trust_beyond_snapshot = true;
        let mut p = Pipeline::new(cfg, &["btcusdt"]);
        let warm = 2000;
        let mut during = 0;
        for (i, (ns, f, binary)) in conv.iter().enumerate() {
            let before = allocs();
            if *binary {
                p.on_binary(*ns, f);
            } else if p.on_frame(*ns, f) == FrameOutcome::Snapshot {
                p.on_snapshot(0, *ns, f).unwrap();
            }
            p.output().discard();
            if i >= warm {
                during += allocs() - before;
            }
        }
        assert!(p.symbols()[0].book().is_synced());
        assert!(p.stats().sbe_frames > 40_000);
        assert_eq!(p.stats().bad_messages, 0);
        assert_eq!(during, 0, "{mode:?}: {during} allocations after warm-up");
    }
}

/// A taker's match larger than any seen before does not grow the SBE trades buffer on the hot
/// path (found as 2 allocations in a live second: the buffer had grown only to the warm-up's
/// largest match).
#[test]
fn a_larger_trades_event_after_warm_up_allocates_nothing() {
    use tickfeed_sim::sbe as enc;
    let frame = |first: u64, n: u64| {
        let t: Vec<enc::TradeEntry> =
            (first..first + n).map(|id| enc::TradeEntry { id, price: 100, qty: 1, buyer_is_maker: false }).collect();
        let m = enc::Trades { event_time_us: 1, transact_time_us: 1, symbol: "BTCUSDT", trades: &t };
        let mut f = Vec::new();
        enc::encode_trades(&m, enc::Scale::Coarsest, &mut f).unwrap();
        f
    };
    let (small, large) = (frame(1, 1), frame(2, 600));
    let mut p =
        Pipeline::new(PipelineConfig { output: OutputMode::TobJson, ..PipelineConfig::default() }, &["btcusdt"]);
    util::alloc::count_this_thread(true);
    p.on_binary(0, &small);
    let before = allocs();
    p.on_binary(0, &large);
    assert_eq!(allocs() - before, 0);
    assert_eq!(p.stats().trades, 601);
}
