#!/usr/bin/env bash
# Adds seeds taken from the real Binance recordings (../shared/data/binance, never committed) to
# the committed synthetic ones: a few hundred frames of each stream, as the pipeline sees them,
# and as recording lines. Run once before fuzzing; the corpus folders are cargo-fuzz's.
set -euo pipefail
cd "$(dirname "$0")"
data=${TICKFEED_DATA:-../../shared/data/binance}
if [ ! -f "$data/btcusdt_20240808.gz" ]; then
    echo "seed.sh: no recordings in $data (set TICKFEED_DATA); the committed seeds alone will do" >&2
    exit 0
fi
n=0
for f in "$data"/btcusdt_20240808.gz "$data"/ethusdt_20240808.gz; do
    # (head closes the pipe early: zcat's SIGPIPE is expected, hence the `|| true`.)
    { zcat "$f" || true; } | head -n 300 | while IFS= read -r line; do
        n=$((n + 1))
        printf '%s' "${line#* }" > "corpus/frame/real-$(basename "$f" .gz)-$n"
        printf '%s' "$line" | head -c 400 > "corpus/line_and_decimal/real-$(basename "$f" .gz)-$n"
    done
done
echo "seed.sh: $(ls corpus/frame | wc -l) frame seeds, $(ls corpus/line_and_decimal | wc -l) line seeds" >&2
