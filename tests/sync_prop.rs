//! Property test of the sync engine (`OrderBook`) against a simple model of the exchange, for
//! both procedures (spot, and USDⓈ-M futures with skipping ids and `pu`): the model, the faults
//! and the properties are in `tests/sync_model`, shared with the cargo-fuzz target
//! `fuzz/fuzz_targets/sync.rs`; this runs them in the normal suite.

mod sync_model;

use proptest::prelude::*;
use sync_model::Step;
use tickfeed::book::Procedure;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1u8..4, any::<u64>(), any::<u8>()).prop_map(|(n, seed, skip)| Step::Move { n, seed, skip }),
        1 => Just(Step::Drop),
        1 => Just(Step::Repeat),
        1 => Just(Step::Swap),
        1 => (0u8..4).prop_map(|delay| Step::Snapshot { delay }),
        1 => (any::<u8>(), 1u8..4).prop_map(|(at, delay)| Step::SnapshotInside { at, delay }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn a_synced_book_always_equals_the_exchange(steps in prop::collection::vec(step(), 1..120)) {
        sync_model::run(Procedure::Spot, &steps).map_err(TestCaseError::fail)?;
    }

    /// The same model with futures' skipping ids and `pu` (this replaced the in-crate futures
    /// model of src/book/sync.rs, which repeated this driver).
    #[test]
    fn a_synced_futures_book_always_equals_the_exchange(steps in prop::collection::vec(step(), 1..150)) {
        sync_model::run(Procedure::UsdM, &steps).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The fuzz target's input decoding, so the fuzzer's path runs in the suite too.
    #[test]
    fn a_synced_book_equals_the_exchange_for_any_byte_string(data in prop::collection::vec(any::<u8>(), 0..400)) {
        sync_model::run(Procedure::Spot, &sync_model::steps_from_bytes(&data)).map_err(TestCaseError::fail)?;
        sync_model::run(Procedure::UsdM, &sync_model::futures_steps_from_bytes(&data)).map_err(TestCaseError::fail)?;
    }
}

/// Found by the cargo-fuzz `sync` target in its first minute: a book synced from a snapshot alone,
/// then a gap; the buffer restarted after two old snapshots and the third synced the book back to
/// an older id ("went back from 102 to 100").
#[test]
fn fuzz_found_a_book_going_back_to_an_older_snapshot() {
    let data = [
        255u8, 255, 255, 255, 255, 255, 206, 206, 206, 206, 206, 206, 206, 206, 206, 206, 255, 255, 58, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 24, 96, 5, 24, 25, 46,
    ];
    sync_model::run(Procedure::Spot, &sync_model::steps_from_bytes(&data)).unwrap();
    sync_model::run(Procedure::UsdM, &sync_model::futures_steps_from_bytes(&data)).unwrap();
}

/// The model can fail: a diff damaged on the way (the book takes a quantity the exchange never
/// had) is caught on either procedure, as a synced book that differs from the exchange.
#[test]
fn the_model_catches_a_book_that_differs() {
    let steps = [
        Step::Move { n: 2, seed: 1, skip: 1 },
        Step::Snapshot { delay: 0 },
        Step::Move { n: 3, seed: 2, skip: 2 },
        Step::Move { n: 1, seed: 3, skip: 0 },
        Step::Move { n: 2, seed: 4, skip: 3 },
    ];
    for p in [Procedure::Spot, Procedure::UsdM] {
        sync_model::run(p, &steps).unwrap();
        let e = sync_model::run_corrupting(p, &steps, 2).unwrap_err();
        assert!(e.contains("but the book differs"), "{p:?}: {e}");
    }
}
