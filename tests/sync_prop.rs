//! Property test of the sync engine (`OrderBook`) against a simple model of the exchange: the
//! model, the faults and the properties are in `tests/sync_model`, shared with the cargo-fuzz
//! target `fuzz/fuzz_targets/sync.rs`; this runs them in the normal suite.

mod sync_model;

use proptest::prelude::*;
use sync_model::Step;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1u8..4, any::<u64>()).prop_map(|(n, seed)| Step::Move { n, seed }),
        1 => Just(Step::Drop),
        1 => Just(Step::Repeat),
        1 => Just(Step::Swap),
        2 => (0u8..4).prop_map(|delay| Step::Snapshot { delay }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn a_synced_book_always_equals_the_exchange(steps in prop::collection::vec(step(), 1..120)) {
        sync_model::run(&steps).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The fuzz target's input decoding, so the fuzzer's path runs in the suite too.
    #[test]
    fn a_synced_book_equals_the_exchange_for_any_byte_string(data in prop::collection::vec(any::<u8>(), 0..400)) {
        sync_model::run(&sync_model::steps_from_bytes(&data)).map_err(TestCaseError::fail)?;
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
    sync_model::run(&sync_model::steps_from_bytes(&data)).unwrap();
}
