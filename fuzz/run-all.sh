#!/usr/bin/env bash
# Every cargo-fuzz target for a bounded time: `fuzz/run-all.sh [SECONDS_PER_TARGET]` (60 by
# default). Adds the seeds from the recordings first (seed.sh); stops at the first target that
# finds a failure (its input is then in fuzz/artifacts/<target>/). RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz's nightly-only flags run on a stable toolchain.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || { echo "run-all.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 2; }
./seed.sh
for t in ws_decoder handshake frame line_and_decimal sync; do
    echo "== $t: ${secs}s" >&2
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="$secs"
done
echo "run-all.sh: every target ran ${secs}s with no failure" >&2
