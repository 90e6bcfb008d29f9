//! The sync engine fed random diff sequences (drops, repeats, swaps, snapshots at random moments,
//! some inside a diff) against a model of the exchange, for both procedures (spot, and USDⓈ-M
//! futures with skipping ids and `pu`): it never applies out of order, and whenever it says synced
//! its book equals the model's at the same update id. The model and its checks are
//! `tests/sync_model`, shared with the proptest test `tests/sync_prop.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickfeed::book::Procedure;

#[path = "../../tests/sync_model/mod.rs"]
mod sync_model;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = sync_model::run(Procedure::Spot, &sync_model::steps_from_bytes(data)) {
        panic!("spot: {e}");
    }
    if let Err(e) = sync_model::run(Procedure::UsdM, &sync_model::futures_steps_from_bytes(data)) {
        panic!("usdm: {e}");
    }
});
